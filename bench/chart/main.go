// Command chart summarises a bench/run.sh results directory: it parses the
// raw wrk, h2load and RSS files of every round, takes per-candidate medians,
// and writes a Markdown table with ratios to the baseline (nginx) and an SVG
// bar chart. It is deliberately dependency-free: the SVG is written by hand.
//
// It does not run any benchmark, and it does not hide failures: a result
// file it cannot read is listed under the table, and requests that failed
// are counted next to the candidate.
//
// Usage:
//
//	chart --dir bench/results/20261126T140000Z --candidates nginx,haproxy,caddy,outrigger,direct,ceiling \
//	      --md table.md --svg docs/benchmarks.svg
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "results directory written by bench/run.sh (required)")
	cands := fs.String("candidates", "nginx,haproxy,caddy,outrigger,naive,direct,ceiling", "comma-separated candidates, in table order (those without results show as —)")
	baseline := fs.String("baseline", "nginx", "candidate the ratios are relative to")
	labelsFile := fs.String("labels", "", "file of \"NAME<TAB>LABEL\" lines giving display labels (default: DIR/labels.tsv if present)")
	mdOut := fs.String("md", "", "also write the Markdown table to this file")
	svgOut := fs.String("svg", "", "write the SVG chart to this file (empty = no chart)")
	title := fs.String("title", "Outrigger vs nginx, HAProxy and Caddy", "chart title")
	subtitle := fs.String("subtitle", "", "second line under the title, e.g. date, machine and whether it was a smoke run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *dir == "" {
		return errors.New("--dir is required")
	}
	var names []string
	for _, n := range strings.Split(*cands, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("--candidates %q: no candidates", *cands)
	}
	lf := *labelsFile
	if lf == "" {
		if p := filepath.Join(*dir, "labels.tsv"); fileExists(p) {
			lf = p
		}
	}
	labels := map[string]string{}
	if lf != "" {
		var err error
		if labels, err = readLabels(lf); err != nil {
			return err
		}
	}
	s, err := load(*dir, names, labels, *baseline)
	if err != nil {
		return err
	}
	table := s.markdown()
	if len(s.Problems) > 0 {
		table += "\nResults that could not be read:\n\n"
		for _, p := range s.Problems {
			table += "- " + mdEscape(p) + "\n"
		}
	}
	fmt.Fprint(stdout, table)
	if *mdOut != "" {
		if err := os.WriteFile(*mdOut, []byte(table), 0o644); err != nil {
			return fmt.Errorf("--md %q: %w", *mdOut, err)
		}
	}
	if *svgOut != "" {
		if err := os.WriteFile(*svgOut, []byte(s.svg(*title, *subtitle)), 0o644); err != nil {
			return fmt.Errorf("--svg %q: %w", *svgOut, err)
		}
	}
	return nil
}

// readLabels reads "NAME<TAB>LABEL" lines; blank lines and # comments are
// skipped.
func readLabels(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--labels %q: %w", path, err)
	}
	defer f.Close()
	return parseLabels(f, path)
}

func parseLabels(r io.Reader, name string) (map[string]string, error) {
	labels := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "\t")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("labels %q line %d: want NAME<TAB>LABEL", name, n)
		}
		labels[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("labels %q: %w", name, err)
	}
	return labels, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
