package bench

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// ThisMachine describes the machine the benchmark runs on.
func ThisMachine(command string) Machine {
	m := Machine{
		CPUs:      runtime.NumCPU(),
		GoVersion: runtime.Version(),
		Date:      time.Now().UTC().Format(time.RFC3339),
		Command:   command,
		LoadStart: LoadAverage(),
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemoryGB = float64(meminfoKB(string(b), "MemTotal")) / (1 << 20)
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return m
}

// LoadAverage is the 1-minute load average, NaN-free (0 when unknown).
func LoadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	x, _ := strconv.ParseFloat(f[0], 64)
	return x
}

// meminfoKB reads one "Key: N kB" line of /proc/meminfo or /proc/PID/status.
func meminfoKB(text, key string) int64 {
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != key {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return 0
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		return n
	}
	return 0
}

// ProcessMemoryMB is the resident memory of pid now (VmRSS) and at its
// peak (VmHWM), in MB.
func ProcessMemoryMB(pid int) (rss, peak float64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	return float64(meminfoKB(string(b), "VmRSS")) / 1024, float64(meminfoKB(string(b), "VmHWM")) / 1024, nil
}
