/*
 * fake_nvml.c -- simulated NVIDIA GPUs behind the real NVML C ABI, for tests and benchmarks.
 *
 * Build:  cc -shared -fPIC -O2 -o <dir>/libnvidia-ml.so.1 fake_nvml.c
 * Use:    LD_LIBRARY_PATH=<dir> python ...   (pynvml dlopens "libnvidia-ml.so.1" by name)
 * The Python side (tests/fakes/__init__.py) builds it and writes these variables for you.
 *
 * Configuration, read once at the first nvmlInit*:
 *   FAKE_NVML_GPU_COUNT     number of GPUs (default 1, at most 16)
 *   FAKE_NVML_COUNTER_GPUS  which GPUs have the total-energy counter: "all" (default), "none",
 *                           or comma-separated indices ("0,2"). The others answer
 *                           NVML_ERROR_NOT_SUPPORTED, like pre-Volta GPUs.
 *   FAKE_NVML_UUIDS         comma-separated UUIDs (default "GPU-11111111-1111-4111-8111-000000000000"
 *                           for GPU 0, "GPU-22222222-2222-4222-8222-000000000001" for GPU 1, ...)
 *   FAKE_NVML_NAME          device name (default "NVIDIA Fake A100")
 *   FAKE_NVML_DRIVER        driver version (default "550.54.15")
 *   FAKE_NVML_INIT_ERROR    if set to a non-zero NVML error code, nvmlInit* returns it
 *   FAKE_NVML_FAIL_FILE     while this file exists, energy and power calls return
 *                           FAKE_NVML_FAIL_CODE (default 15, NVML_ERROR_GPU_IS_LOST)
 *   FAKE_NVML_LOG           append one line per energy/power call to this file:
 *                             "<energy|power> <CLOCK_MONOTONIC seconds> <gpu index> <value>"
 *                           value in mJ (energy) or mW (power); the time is the instant the value
 *                           was computed for. Failed calls log "<kind>-error <t> <gpu> <code>".
 *   FAKE_NVML_INIT_LOG      append "<pid>" per successful nvmlInit* call: which processes
 *                           probed the GPUs
 *
 * The power program (the same for every GPU, times FAKE_NVML_SCALES), a pure function of
 * CLOCK_MONOTONIC (Python's time.monotonic() on Linux), t = now - FAKE_NVML_T0:
 *   FAKE_NVML_T0       start instant, CLOCK_MONOTONIC seconds (default: the first nvmlInit)
 *   FAKE_NVML_IDLE_W   power before the bursts, W (default 60); also the power before T0
 *   FAKE_NVML_IDLE_S   the bursts start at t = IDLE_S seconds (default 1.0)
 *   FAKE_NVML_HIGH_W   burst power, W (default 400), for HIGH_S seconds (default 0.023)
 *   FAKE_NVML_LOW_W    then this power, W (default 150), for LOW_S seconds (default 0.037); repeat
 *   FAKE_NVML_SCALES   comma-separated per-GPU multipliers of the program (default 1 for all)
 *   FAKE_NVML_PROCS    compute processes: comma-separated "gpu:pid:sm" (pid "self" = the
 *                      calling process), each with a constant SM utilisation in percent;
 *                      nvmlDeviceGetComputeRunningProcesses_v3 lists them and
 *                      nvmlDeviceGetProcessUtilization gives one sample each per call
 * nvmlDeviceGetPowerUsage = the program's instantaneous power (mW, rounded).
 * nvmlDeviceGetTotalEnergyConsumption = floor(exact integral of the program from T0 to now, mJ);
 * 0 before T0.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int nvmlReturn_t;
enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_GPU_IS_LOST = 15,
    NVML_ERROR_UNKNOWN = 999,
};

#define MAX_GPUS 16

typedef struct nvmlDevice_st {
    unsigned int index;
} *nvmlDevice_t;

static struct nvmlDevice_st devices[MAX_GPUS];
static char uuids[MAX_GPUS][96];
static int has_counter[MAX_GPUS];
static double scales[MAX_GPUS];
static unsigned int gpu_count = 1;
static char name[96] = "NVIDIA Fake A100";
static char driver[80] = "550.54.15";
static int init_error = 0;
static int fail_code = NVML_ERROR_GPU_IS_LOST;
static char fail_file[4096];
static int log_fd = -1;
static long long t0_ns;
static double idle_w = 60, idle_s = 1.0, high_w = 400, high_s = 0.023, low_w = 150, low_s = 0.037;

#define MAX_PROCS 32
static struct { unsigned int gpu; int pid; unsigned int sm; } procs[MAX_PROCS];
static int proc_count = 0;

static int config_loaded = 0;
static int config_lock = 0;
static int init_count = 0;

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double env_double(const char *key, double fallback) {
    const char *v = getenv(key);
    return (v && *v) ? strtod(v, NULL) : fallback;
}

static void copy_env(const char *key, char *dst, size_t size) {
    const char *v = getenv(key);
    if (v && *v) {
        strncpy(dst, v, size - 1);
        dst[size - 1] = '\0';
    }
}

static void load_config(void) {
    while (__sync_lock_test_and_set(&config_lock, 1)) {
    }
    if (!config_loaded) {
        gpu_count = (unsigned int)env_double("FAKE_NVML_GPU_COUNT", 1);
        if (gpu_count > MAX_GPUS) gpu_count = MAX_GPUS;
        for (unsigned int i = 0; i < MAX_GPUS; i++) {
            devices[i].index = i;
            has_counter[i] = 1;
            scales[i] = 1.0;
            snprintf(uuids[i], sizeof uuids[i], "GPU-%08x-%04x-4%03x-8%03x-%012x",
                     (i + 1) * 0x11111111u, (i + 1) * 0x1111u, ((i + 1) * 0x111u) & 0xfff,
                     ((i + 1) * 0x111u) & 0xfff, i);
        }
        const char *counters = getenv("FAKE_NVML_COUNTER_GPUS");
        if (counters && strcmp(counters, "all") != 0) {
            for (unsigned int i = 0; i < MAX_GPUS; i++) has_counter[i] = 0;
            if (strcmp(counters, "none") != 0) {
                const char *p = counters;
                while (*p) {
                    char *end;
                    long i = strtol(p, &end, 10);
                    if (end == p) break;
                    if (i >= 0 && i < MAX_GPUS) has_counter[i] = 1;
                    p = (*end == ',') ? end + 1 : end;
                }
            }
        }
        const char *sc = getenv("FAKE_NVML_SCALES");
        if (sc) {
            const char *p = sc;
            for (unsigned int i = 0; i < MAX_GPUS && *p; i++) {
                char *end;
                double s = strtod(p, &end);
                if (end == p) break;
                scales[i] = s;
                p = (*end == ',') ? end + 1 : end;
            }
        }
        const char *us = getenv("FAKE_NVML_UUIDS");
        if (us) {
            const char *p = us;
            for (unsigned int i = 0; i < MAX_GPUS && *p; i++) {
                size_t n = strcspn(p, ",");
                if (n >= sizeof uuids[i]) n = sizeof uuids[i] - 1;
                memcpy(uuids[i], p, n);
                uuids[i][n] = '\0';
                p += n;
                if (*p == ',') p++;
            }
        }
        const char *ps = getenv("FAKE_NVML_PROCS");
        if (ps) {
            const char *p = ps;
            while (*p && proc_count < MAX_PROCS) {
                char *end;
                unsigned int gpu = (unsigned int)strtoul(p, &end, 10);
                if (*end != ':') break;
                p = end + 1;
                int pid;
                if (strncmp(p, "self", 4) == 0) {
                    pid = -1;
                    p += 4;
                } else {
                    pid = (int)strtol(p, &end, 10);
                    p = end;
                }
                if (*p != ':') break;
                unsigned int sm = (unsigned int)strtoul(p + 1, &end, 10);
                procs[proc_count].gpu = gpu;
                procs[proc_count].pid = pid;
                procs[proc_count].sm = sm;
                proc_count++;
                p = (*end == ',') ? end + 1 : end;
            }
        }
        copy_env("FAKE_NVML_NAME", name, sizeof name);
        copy_env("FAKE_NVML_DRIVER", driver, sizeof driver);
        init_error = (int)env_double("FAKE_NVML_INIT_ERROR", 0);
        fail_code = (int)env_double("FAKE_NVML_FAIL_CODE", NVML_ERROR_GPU_IS_LOST);
        copy_env("FAKE_NVML_FAIL_FILE", fail_file, sizeof fail_file);
        const char *log = getenv("FAKE_NVML_LOG");
        if (log && *log) log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        const char *t0 = getenv("FAKE_NVML_T0");
        /* Parse "seconds.fraction" as integers: keeps nanosecond precision at any uptime. */
        if (t0 && *t0) {
            char *end;
            long long whole = strtoll(t0, &end, 10);
            long long frac_ns = 0;
            if (*end == '.') {
                int digits = 0;
                for (const char *q = end + 1; *q >= '0' && *q <= '9'; q++) {
                    if (digits < 9) {
                        frac_ns = frac_ns * 10 + (*q - '0');
                        digits++;
                    }
                }
                while (digits++ < 9) frac_ns *= 10;
            }
            t0_ns = whole * 1000000000LL + (t0[0] == '-' ? -frac_ns : frac_ns);
        } else {
            t0_ns = now_ns();
        }
        idle_w = env_double("FAKE_NVML_IDLE_W", idle_w);
        idle_s = env_double("FAKE_NVML_IDLE_S", idle_s);
        high_w = env_double("FAKE_NVML_HIGH_W", high_w);
        high_s = env_double("FAKE_NVML_HIGH_S", high_s);
        low_w = env_double("FAKE_NVML_LOW_W", low_w);
        low_s = env_double("FAKE_NVML_LOW_S", low_s);
        config_loaded = 1;
    }
    __sync_lock_release(&config_lock);
}

/* The program's power at t seconds after T0 (W, before the per-GPU scale). */
static double program_power_w(double t) {
    double period = high_s + low_s;
    if (t < idle_s || period <= 0) return idle_w;
    double phase = fmod(t - idle_s, period);
    return phase < high_s ? high_w : low_w;
}

/* Exact integral of the program from T0 to t seconds after T0 (J, before the scale). */
static double program_energy_j(double t) {
    if (t <= 0) return 0;
    if (t <= idle_s) return idle_w * t;
    double period = high_s + low_s;
    double e = idle_w * idle_s;
    double r = t - idle_s;
    if (period <= 0) return e + idle_w * r;
    double n = floor(r / period);
    double phase = r - n * period;
    e += n * (high_w * high_s + low_w * low_s);
    if (phase < high_s)
        e += high_w * phase;
    else
        e += high_w * high_s + low_w * (phase - high_s);
    return e;
}

static void log_call(const char *kind, long long t_ns, unsigned int gpu, unsigned long long value) {
    if (log_fd < 0) return;
    char line[128];
    /* One write() per line: lines from concurrent threads never interleave (O_APPEND). */
    int n = snprintf(line, sizeof line, "%s %lld.%09lld %u %llu\n", kind, t_ns / 1000000000LL,
                     t_ns % 1000000000LL, gpu, value);
    if (n > 0) {
        ssize_t ignored = write(log_fd, line, (size_t)n);
        (void)ignored;
    }
}

static int failing(void) { return fail_file[0] && access(fail_file, F_OK) == 0; }

static nvmlReturn_t check_device(nvmlDevice_t device) {
    if (__atomic_load_n(&init_count, __ATOMIC_SEQ_CST) <= 0) return NVML_ERROR_UNINITIALIZED;
    if (device < devices || device >= devices + gpu_count) return NVML_ERROR_INVALID_ARGUMENT;
    return NVML_SUCCESS;
}

static nvmlReturn_t copy_out(const char *src, char *dst, unsigned int length) {
    if (!dst) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(src) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(dst, src);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    load_config();
    if (init_error) return init_error;
    __atomic_add_fetch(&init_count, 1, __ATOMIC_SEQ_CST);
    const char *init_log = getenv("FAKE_NVML_INIT_LOG");
    if (init_log && *init_log) {
        int fd = open(init_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            char line[32];
            int n = snprintf(line, sizeof line, "%d\n", (int)getpid());
            if (n > 0) (void)!write(fd, line, (size_t)n);
            close(fd);
        }
    }
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlInit_v2(void) { return nvmlInitWithFlags(0); }
nvmlReturn_t nvmlInit(void) { return nvmlInitWithFlags(0); }

nvmlReturn_t nvmlShutdown(void) {
    if (__atomic_load_n(&init_count, __ATOMIC_SEQ_CST) <= 0) return NVML_ERROR_UNINITIALIZED;
    __atomic_sub_fetch(&init_count, 1, __ATOMIC_SEQ_CST);
    return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t result) {
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    if (__atomic_load_n(&init_count, __ATOMIC_SEQ_CST) <= 0) return NVML_ERROR_UNINITIALIZED;
    return copy_out(driver, version, length);
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length) {
    if (__atomic_load_n(&init_count, __ATOMIC_SEQ_CST) <= 0) return NVML_ERROR_UNINITIALIZED;
    return copy_out("12.550.54.15", version, length);
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    if (__atomic_load_n(&init_count, __ATOMIC_SEQ_CST) <= 0) return NVML_ERROR_UNINITIALIZED;
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    *count = gpu_count;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCount(unsigned int *count) { return nvmlDeviceGetCount_v2(count); }

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    if (__atomic_load_n(&init_count, __ATOMIC_SEQ_CST) <= 0) return NVML_ERROR_UNINITIALIZED;
    if (!device || index >= gpu_count) return NVML_ERROR_INVALID_ARGUMENT;
    *device = &devices[index];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device) {
    return nvmlDeviceGetHandleByIndex_v2(index, device);
}

nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device) {
    if (__atomic_load_n(&init_count, __ATOMIC_SEQ_CST) <= 0) return NVML_ERROR_UNINITIALIZED;
    if (!uuid || !device) return NVML_ERROR_INVALID_ARGUMENT;
    for (unsigned int i = 0; i < gpu_count; i++) {
        if (strcmp(uuid, uuids[i]) == 0) {
            *device = &devices[i];
            return NVML_SUCCESS;
        }
    }
    return NVML_ERROR_NOT_FOUND;
}

nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index) {
    nvmlReturn_t r = check_device(device);
    if (r != NVML_SUCCESS) return r;
    if (!index) return NVML_ERROR_INVALID_ARGUMENT;
    *index = device->index;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *out, unsigned int length) {
    nvmlReturn_t r = check_device(device);
    return r != NVML_SUCCESS ? r : copy_out(name, out, length);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *out, unsigned int length) {
    nvmlReturn_t r = check_device(device);
    return r != NVML_SUCCESS ? r : copy_out(uuids[device->index], out, length);
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device, unsigned long long *energy) {
    nvmlReturn_t r = check_device(device);
    if (r != NVML_SUCCESS) return r;
    if (!energy) return NVML_ERROR_INVALID_ARGUMENT;
    long long t = now_ns();
    if (!has_counter[device->index]) return NVML_ERROR_NOT_SUPPORTED;
    if (failing()) {
        log_call("energy-error", t, device->index, (unsigned long long)fail_code);
        return fail_code;
    }
    double e_mj = scales[device->index] * program_energy_j((t - t0_ns) * 1e-9) * 1000.0;
    *energy = (unsigned long long)floor(e_mj);
    log_call("energy", t, device->index, *energy);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power) {
    nvmlReturn_t r = check_device(device);
    if (r != NVML_SUCCESS) return r;
    if (!power) return NVML_ERROR_INVALID_ARGUMENT;
    long long t = now_ns();
    if (failing()) {
        log_call("power-error", t, device->index, (unsigned long long)fail_code);
        return fail_code;
    }
    double p_mw = scales[device->index] * program_power_w((t - t0_ns) * 1e-9) * 1000.0;
    *power = (unsigned int)llround(p_mw);
    log_call("power", t, device->index, *power);
    return NVML_SUCCESS;
}

typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlProcessInfo_t;

typedef struct {
    unsigned int pid;
    unsigned long long timeStamp;
    unsigned int smUtil, memUtil, encUtil, decUtil;
} nvmlProcessUtilizationSample_t;

static int proc_pid(int i) { return procs[i].pid < 0 ? (int)getpid() : procs[i].pid; }

static unsigned int procs_on(unsigned int gpu) {
    unsigned int n = 0;
    for (int i = 0; i < proc_count; i++) n += procs[i].gpu == gpu;
    return n;
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *count,
                                                     nvmlProcessInfo_t *infos) {
    nvmlReturn_t r = check_device(device);
    if (r != NVML_SUCCESS) return r;
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    unsigned int n = procs_on(device->index);
    if (!infos || *count < n) {
        *count = n;
        return n == 0 ? NVML_SUCCESS : NVML_ERROR_INSUFFICIENT_SIZE;
    }
    unsigned int k = 0;
    for (int i = 0; i < proc_count; i++) {
        if (procs[i].gpu != device->index) continue;
        infos[k].pid = (unsigned int)proc_pid(i);
        infos[k].usedGpuMemory = 1ULL << 30;
        infos[k].gpuInstanceId = 0xFFFFFFFFu;
        infos[k].computeInstanceId = 0xFFFFFFFFu;
        k++;
    }
    *count = k;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t device,
                                             nvmlProcessUtilizationSample_t *samples,
                                             unsigned int *count,
                                             unsigned long long lastSeenTimeStamp) {
    (void)lastSeenTimeStamp;
    nvmlReturn_t r = check_device(device);
    if (r != NVML_SUCCESS) return r;
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    unsigned int n = procs_on(device->index);
    if (n == 0) return NVML_ERROR_NOT_FOUND;
    if (!samples || *count < n) {
        *count = n;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long now_us = (unsigned long long)ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;
    unsigned int k = 0;
    for (int i = 0; i < proc_count; i++) {
        if (procs[i].gpu != device->index) continue;
        samples[k].pid = (unsigned int)proc_pid(i);
        samples[k].timeStamp = now_us;
        samples[k].smUtil = procs[i].sm;
        samples[k].memUtil = procs[i].sm / 2;
        samples[k].encUtil = 0;
        samples[k].decUtil = 0;
        k++;
    }
    *count = k;
    return NVML_SUCCESS;
}
