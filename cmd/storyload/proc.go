package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// procStat is what /proc says about a local process.
type procStat struct {
	RSSKiB  int64 // VmRSS
	PeakKiB int64 // VmHWM
	CPU     time.Duration
	Threads int
	FDs     int
}

// clockTick is USER_HZ, 100 on every Linux storyload runs on.
const clockTick = 100

// readProc reads pid's memory, CPU time and open files from /proc.
func readProc(pid int) (procStat, error) {
	var st procStat
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, fmt.Errorf("read /proc of pid %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch k {
		case "VmRSS":
			st.RSSKiB = n
		case "VmHWM":
			st.PeakKiB = n
		case "Threads":
			st.Threads = int(n)
		}
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, fmt.Errorf("read /proc of pid %d: %w", pid, err)
	}
	// The command name (field 2) may hold spaces: fields count from ')'.
	s := string(raw)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		fields := strings.Fields(s[i+1:])
		if len(fields) > 13 {
			ut, _ := strconv.ParseInt(fields[11], 10, 64)
			stt, _ := strconv.ParseInt(fields[12], 10, 64)
			st.CPU = time.Duration(ut+stt) * time.Second / clockTick
		}
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		st.FDs = len(ents)
	}
	return st, nil
}

// procReport is the JSON form of storyd's resources over a run.
type procReport struct {
	PID      int     `json:"pid"`
	RSSKiB   int64   `json:"rss_kib"`
	PeakKiB  int64   `json:"rss_peak_kib"`
	CPUCores float64 `json:"cpu_cores"` // CPU seconds per second of the run
	Threads  int     `json:"threads"`
	FDs      int     `json:"fds"`
}

func procDelta(pid int, before, after procStat, elapsed time.Duration) *procReport {
	return &procReport{PID: pid, RSSKiB: after.RSSKiB, PeakKiB: after.PeakKiB,
		CPUCores: (after.CPU - before.CPU).Seconds() / elapsed.Seconds(), Threads: after.Threads, FDs: after.FDs}
}
