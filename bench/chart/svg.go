package main

import (
	"fmt"
	"math"
	"strings"
)

// palette gives each candidate a colour, in candidate order.
var palette = []string{"#009639", "#1f6fb2", "#22b8cf", "#e8590c", "#868e96", "#6741d9", "#c2255c", "#5c940d"}

// bar group: a label and one value per candidate (ok=false: not measured).
type barGroup struct {
	Label  string
	Values []float64
	OK     []bool
}

// svg draws two bar-chart panels: throughput as a ratio to the baseline
// (higher is better) and memory in MiB (lower is better). It is plain SVG
// 1.1 with no scripts, fonts or external references.
func (s *summary) svg(title, subtitle string) string {
	const (
		width   = 980
		panelH  = 300
		top     = 92
		gap     = 70
		legendH = 30
	)
	height := top + 2*panelH + gap + legendH + 20
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="28" font-size="18" font-weight="bold" text-anchor="middle">%s</text>`+"\n", width/2, xmlEscape(title))
	if subtitle != "" {
		fmt.Fprintf(&b, `<text x="%d" y="48" font-size="12" fill="#495057" text-anchor="middle">%s</text>`+"\n", width/2, xmlEscape(subtitle))
	}

	var tput []barGroup
	for _, g := range []struct {
		label string
		m     metric
	}{{"HTTP/1.1 1 KiB", mRPS1k}, {"HTTP/1.1 64 KiB", mRPS64k}, {"new TLS conn/s", mNewConn}, {"HTTP/2 1 KiB", mH2}} {
		bg := barGroup{Label: g.label}
		for _, c := range s.Candidates {
			v, ok := s.ratio(c, g.m)
			bg.Values, bg.OK = append(bg.Values, v), append(bg.OK, ok)
		}
		tput = append(tput, bg)
	}
	// The ratio axis stops at 3×: the no-TLS "direct" case can be 8× and
	// would flatten every bar that matters; taller bars are cut and marked.
	drawPanel(&b, 60, top, width-80, panelH, fmt.Sprintf("Throughput ×%s (median; higher is better)", s.Baseline), tput, "%.2f", 1, 3)

	var mem []barGroup
	connsLabel := "idle TLS conns"
	if s.Conns > 0 {
		connsLabel = fmt.Sprintf("%s idle TLS conns", group(float64(s.Conns)))
	}
	for _, g := range []struct {
		label string
		m     metric
	}{{"idle", mRSSIdle}, {"under load (h1 1 KiB)", mRSSLoad}, {connsLabel, mRSSConns}} {
		bg := barGroup{Label: g.label}
		for _, c := range s.Candidates {
			v, ok := c.median(g.m)
			bg.Values, bg.OK = append(bg.Values, v), append(bg.OK, ok)
		}
		mem = append(mem, bg)
	}
	drawPanel(&b, 60, top+panelH+gap, width-80, panelH, "Resident memory, MiB (median; lower is better)", mem, "%.1f", 0, 0)

	// Legend.
	y := top + 2*panelH + gap + 40
	x := 60
	for i, c := range s.Candidates {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/>`+"\n", x, y-10, palette[i%len(palette)])
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", x+16, y, xmlEscape(c.Name))
		x += 30 + 8*len([]rune(c.Name))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// drawPanel draws one grouped bar chart in the box (x, y, w, h). refLine,
// if positive, is drawn as a dashed horizontal line (the baseline's 1.0).
// clip, if positive, caps the axis: longer bars are cut at the top and
// their value is printed with an arrow.
func drawPanel(b *strings.Builder, x, y, w, h int, title string, groups []barGroup, format string, refLine, clip float64) {
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="14" font-weight="bold">%s</text>`+"\n", x, y-12, xmlEscape(title))
	top := 0.0
	for _, g := range groups {
		for i, v := range g.Values {
			if g.OK[i] {
				top = max(top, v)
			}
		}
	}
	top = max(top, refLine)
	if clip > 0 {
		top = min(top, clip)
	}
	axisMax := niceCeil(top)
	plotH := float64(h - 40) // room for group labels below
	base := float64(y) + plotH
	scale := func(v float64) float64 { return plotH * v / axisMax }

	// Axis and grid.
	for i := 0; i <= 4; i++ {
		v := axisMax * float64(i) / 4
		ly := base - scale(v)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#dee2e6"/>`+"\n", x, ly, x+w, ly)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" fill="#495057">%s</text>`+"\n", x-6, ly+4, trimZeros(fmt.Sprintf("%.2f", v)))
	}
	fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#212529"/>`+"\n", x, base, x+w, base)
	if refLine > 0 {
		ly := base - scale(refLine)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#212529" stroke-dasharray="6 4"/>`+"\n", x, ly, x+w, ly)
	}
	if len(groups) == 0 {
		return
	}
	groupW := float64(w) / float64(len(groups))
	for gi, g := range groups {
		n := max(len(g.Values), 1)
		barW := math.Min(40, (groupW-30)/float64(n))
		gx := float64(x) + groupW*float64(gi) + (groupW-barW*float64(n))/2
		for i, v := range g.Values {
			bx := gx + barW*float64(i)
			color := palette[i%len(palette)]
			if !g.OK[i] {
				fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#adb5bd">–</text>`+"\n", bx+barW/2, base-4)
				continue
			}
			label := fmt.Sprintf(format, v)
			bh := scale(v)
			if v > axisMax {
				bh = scale(axisMax)
				label += "↑"
			}
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", bx+1, base-bh, barW-2, bh, color)
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%s</text>`+"\n", bx+barW/2, base-bh-3, label)
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", float64(x)+groupW*(float64(gi)+0.5), base+20, xmlEscape(g.Label))
	}
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, so axis ticks
// land on readable numbers.
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace(s)
}
