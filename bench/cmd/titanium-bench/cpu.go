package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"titanium/bench/report"
)

// cpuGroup is a named set of processes whose CPU a run charges per request:
// one service's instances, nginx's master and workers, the generator.
type cpuGroup struct {
	name string
	pids []int
}

// cpuSample is the CPU each group and the whole machine had used at one
// moment; two samples give what a run cost.
type cpuSample struct {
	at          time.Time
	byGroup     map[string]time.Duration
	kernel      map[string]kernelCounts
	busy, total time.Duration // the machine: every core's busy and total time
}

// kernelCounts are a process's costly trips into the kernel: read and write
// system calls (any kind: read, recvfrom, write, writev...; /proc/PID/io
// syscr and syscw, over all threads) and context switches of all its
// threads, voluntary or not (/proc/PID/task/*/status). On a virtual machine
// each one costs microseconds: per request, they are most of a hop's CPU.
type kernelCounts struct {
	reads, writes, switches int64
}

func (k *kernelCounts) add(o kernelCounts) {
	k.reads += o.reads
	k.writes += o.writes
	k.switches += o.switches
}

// readKernelCounts reads pid's counts from /proc.
func readKernelCounts(pid int) (kernelCounts, error) {
	io, err := procFields(fmt.Sprintf("/proc/%d/io", pid), "syscr", "syscw")
	if err != nil {
		return kernelCounts{}, err
	}
	k := kernelCounts{reads: io[0], writes: io[1]}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return k, err
	}
	for _, t := range tasks {
		cs, err := procFields(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()), "voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")
		if err != nil {
			continue // the thread ended
		}
		k.switches += cs[0] + cs[1]
	}
	return k, nil
}

func sampleCPU(groups []cpuGroup) cpuSample {
	s := cpuSample{at: time.Now(), byGroup: map[string]time.Duration{}, kernel: map[string]kernelCounts{}}
	for _, g := range groups {
		var k kernelCounts
		for _, pid := range g.pids {
			if t, err := cpuTime(pid); err == nil {
				s.byGroup[g.name] += t
			}
			if c, err := readKernelCounts(pid); err == nil {
				k.add(c)
			}
		}
		s.kernel[g.name] = k
	}
	s.busy, s.total, _ = machineCPU()
	return s
}

// cpuCost is what a run cost per request, by group, and how busy the
// machine was: what the groups do not account for is other work (the
// kernel's share that lands outside them, and anything else running).
type cpuCost struct {
	groups  []string
	perReq  map[string]time.Duration
	sum     time.Duration // over the groups
	busyPct float64       // machine busy, % of all cores
	other   time.Duration // machine busy time per request outside the groups
	// kernel is each group's reads, writes and context switches per
	// request (groups sampled from /proc only).
	kernel map[string][3]float64
}

// cpuSpent is CPU measured apart from the samples (wrk's own rusage).
type cpuSpent struct {
	name string
	d    time.Duration
}

func costBetween(groups []cpuGroup, a, b cpuSample, requests int, extra ...cpuSpent) cpuCost {
	c := cpuCost{perReq: map[string]time.Duration{}, kernel: map[string][3]float64{}}
	if requests <= 0 {
		return c
	}
	n := float64(requests)
	for _, g := range groups {
		ka, kb := a.kernel[g.name], b.kernel[g.name]
		c.kernel[g.name] = [3]float64{float64(kb.reads-ka.reads) / n, float64(kb.writes-ka.writes) / n, float64(kb.switches-ka.switches) / n}
	}
	var charged time.Duration
	add := func(name string, d time.Duration) {
		c.groups = append(c.groups, name)
		c.perReq[name] = d / time.Duration(requests)
		c.sum += c.perReq[name]
		charged += d
	}
	for _, g := range groups {
		add(g.name, b.byGroup[g.name]-a.byGroup[g.name])
	}
	for _, e := range extra {
		add(e.name, e.d)
	}
	if total := b.total - a.total; total > 0 {
		busy := b.busy - a.busy
		c.busyPct = 100 * float64(busy) / float64(total)
		c.other = max(0, busy-charged) / time.Duration(requests)
	}
	return c
}

// limit is the request rate at which the groups' CPU alone fills every
// core: cores ÷ the sum of CPU per request.
func (c cpuCost) limit(cores int) float64 {
	if c.sum <= 0 {
		return 0
	}
	return float64(cores) * float64(time.Second) / float64(c.sum)
}

// String is the breakdown in µs per request, e.g. "lb 48 + backend 35 +
// wrk 19 = 102 µs/req (other 6, machine 100% busy)".
func (c cpuCost) String() string {
	parts := make([]string, len(c.groups))
	for i, g := range c.groups {
		parts[i] = fmt.Sprintf("%s %.0f", g, us(c.perReq[g]))
	}
	return fmt.Sprintf("%s = %.0f µs/req (other %.0f, machine %.0f%% busy)", strings.Join(parts, " + "), us(c.sum), us(c.other), c.busyPct)
}

// row is a table row: each group's µs per request, the sum, other, busy.
func (c cpuCost) row(lead ...string) []string {
	row := append([]string(nil), lead...)
	for _, g := range c.groups {
		row = append(row, fmt.Sprintf("%.1f", us(c.perReq[g])))
	}
	return append(row, fmt.Sprintf("%.1f", us(c.sum)), fmt.Sprintf("%.1f", us(c.other)), fmt.Sprintf("%.0f", c.busyPct))
}

// kernelRow is a table row: each sampled group's reads/writes/switches
// per request.
func (c cpuCost) kernelRow(lead ...string) []string {
	row := append([]string(nil), lead...)
	for _, g := range c.groups {
		if k, ok := c.kernel[g]; ok {
			row = append(row, fmt.Sprintf("%.1f / %.1f / %.1f", k[0], k[1], k[2]))
		}
	}
	return row
}

func kernelTable(title string, lead []string, c cpuCost) *report.Table {
	cols := append([]string(nil), lead...)
	for _, g := range c.groups {
		if _, ok := c.kernel[g]; ok {
			cols = append(cols, g+" r/w/cs")
		}
	}
	return &report.Table{Title: title, Columns: cols}
}

func cpuTable(title string, lead []string, c cpuCost) *report.Table {
	cols := append([]string(nil), lead...)
	for _, g := range c.groups {
		cols = append(cols, g+" µs")
	}
	return &report.Table{Title: title, Columns: append(cols, "sum µs", "other µs", "busy %")}
}

// machineCPU reads the machine's busy and total CPU time from /proc/stat
// (idle and iowait are not busy).
func machineCPU() (busy, total time.Duration, err error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("unexpected /proc/stat: %q", line)
	}
	var idle int64
	for i, s := range f[1:] {
		if i >= 8 { // guest time is already in user
			break
		}
		v, _ := strconv.ParseInt(s, 10, 64)
		total += time.Duration(v) * 10 * time.Millisecond
		if i == 3 || i == 4 {
			idle += v
		}
	}
	return total - time.Duration(idle)*10*time.Millisecond, total, nil
}

// childPids are the direct children of pid (nginx's workers), from /proc.
func childPids(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, p)
		}
	}
	return out
}
