// Package report holds what a benchmark run measured: the environment it
// ran in, one row per figure with its target, and the renderings of both (a
// text table for people, JSON for machines). It also has the percentile
// arithmetic every scenario shares.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Env describes the machine and the code a run measured.
type Env struct {
	Time      time.Time `json:"time"`
	CPU       string    `json:"cpu"`
	Cores     int       `json:"cores"`
	GoVersion string    `json:"go_version"`
	Commit    string    `json:"commit"`
	Kernel    string    `json:"kernel"`
	// LoadAvg is /proc/loadavg at the start: other work on the machine
	// skews every figure, so the report says how busy it was.
	LoadAvg string            `json:"load_avg"`
	Tools   map[string]string `json:"tools,omitempty"`
}

// Figure is one measured number and, when it has one, its target.
type Figure struct {
	Scenario string  `json:"scenario"`
	Name     string  `json:"name"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	// Target is the goal as text ("≥ 2000", "≤ 1.5"); empty for context
	// figures that have no goal.
	Target string `json:"target,omitempty"`
	// Met is nil when there is no target or the figure could not be taken.
	Met  *bool  `json:"met,omitempty"`
	Note string `json:"note,omitempty"`
}

// Report is a whole run: environment, figures, and detail tables.
type Report struct {
	Env     Env               `json:"env"`
	Figures []Figure          `json:"figures"`
	Details map[string]*Table `json:"details,omitempty"`
	// Skipped names scenarios that could not run, with the reason.
	Skipped map[string]string `json:"skipped,omitempty"`
	Elapsed float64           `json:"elapsed_seconds"`
}

// Table is a small detail table (e.g. B1's rate steps).
type Table struct {
	Title   string     `json:"title"`
	Columns []string   `json:"columns"`
	Rows    [][]string `json:"rows"`
}

// Add appends a figure with no target.
func (r *Report) Add(scenario, name string, value float64, unit, note string) {
	r.Figures = append(r.Figures, Figure{Scenario: scenario, Name: name, Value: value, Unit: unit, Note: note})
}

// AddTarget appends a figure with a target: atLeast says whether the value
// must be ≥ limit (else ≤ limit).
func (r *Report) AddTarget(scenario, name string, value float64, unit string, atLeast bool, limit float64, note string) {
	met := value <= limit
	op := "≤"
	if atLeast {
		met = value >= limit
		op = "≥"
	}
	r.Figures = append(r.Figures, Figure{Scenario: scenario, Name: name, Value: value, Unit: unit,
		Target: fmt.Sprintf("%s %s", op, trimFloat(limit)), Met: &met, Note: note})
}

// Skip records a scenario that did not run.
func (r *Report) Skip(scenario, reason string) {
	if r.Skipped == nil {
		r.Skipped = map[string]string{}
	}
	r.Skipped[scenario] = reason
}

// Detail adds a detail table under a key (its scenario).
func (r *Report) Detail(key string, t *Table) {
	if r.Details == nil {
		r.Details = map[string]*Table{}
	}
	r.Details[key] = t
}

// WriteText renders the environment header, the detail tables and the
// figures table.
func (r *Report) WriteText(w io.Writer) {
	e := r.Env
	fmt.Fprintf(w, "Titanium benchmark  %s\n", e.Time.Format(time.RFC3339))
	fmt.Fprintf(w, "cpu: %s, %d cores; kernel %s; load avg at start %s\n", e.CPU, e.Cores, e.Kernel, e.LoadAvg)
	fmt.Fprintf(w, "go: %s; commit %s", e.GoVersion, e.Commit)
	for _, k := range slices.Sorted(maps.Keys(e.Tools)) {
		fmt.Fprintf(w, "; %s %s", k, e.Tools[k])
	}
	fmt.Fprintln(w)
	for _, k := range slices.Sorted(maps.Keys(r.Details)) {
		t := r.Details[k]
		fmt.Fprintf(w, "\n%s\n", t.Title)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, strings.Join(t.Columns, "\t")+"\t")
		for _, row := range t.Rows {
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "| scenario\t| figure\t| value\t| target\t| met\t| note")
	fmt.Fprintln(tw, "|---\t|---\t|---\t|---\t|---\t|---")
	for _, f := range r.Figures {
		met := ""
		if f.Met != nil {
			met = "no"
			if *f.Met {
				met = "yes"
			}
		}
		fmt.Fprintf(tw, "| %s\t| %s\t| %s %s\t| %s\t| %s\t| %s\n", f.Scenario, f.Name, trimFloat(f.Value), f.Unit, f.Target, met, f.Note)
	}
	tw.Flush()
	for _, k := range slices.Sorted(maps.Keys(r.Skipped)) {
		fmt.Fprintf(w, "%s not measured: %s\n", k, r.Skipped[k])
	}
	fmt.Fprintf(w, "total time %.0f s\n", r.Elapsed)
}

// WriteJSON writes the report as indented JSON to path (directories made).
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// trimFloat prints a number without trailing zeros, at most 2 decimals
// (more for small values so ratios like 0.004 stay readable).
func trimFloat(v float64) string {
	prec := 2
	if v != 0 && v < 0.1 && v > -0.1 {
		prec = 4
	}
	s := fmt.Sprintf("%.*f", prec, v)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// Percentile returns the p-th percentile (0 < p ≤ 100, nearest rank) of
// sorted; zero for an empty slice.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(p/100*float64(n) + 0.999999999)
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// Ms is d in milliseconds.
func Ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Collect fills in the environment of this run; root is the repository.
func Collect(root string) Env {
	e := Env{Time: time.Now().UTC().Truncate(time.Second), Cores: runtime.NumCPU(), GoVersion: runtime.Version(), Tools: map[string]string{}}
	e.CPU = "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				e.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		e.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			e.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	e.Commit = "unknown"
	if out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output(); err == nil {
		e.Commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
			e.Commit += "-dirty"
		}
	}
	return e
}
