package matrix

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// TextOptions say how WriteText prints.
type TextOptions struct {
	// Color adds ANSI colours (for a terminal); the zero value prints plain
	// text.
	Color bool
}

// Symbols of the cells in the terminal, one per verdict.
var symbols = map[Verdict]string{Allow: "✓", Partial: "◐", Deny: "✗", None: "·", Self: "╲"}

// ANSI styles.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
)

var verdictColors = map[Verdict]string{Allow: ansiGreen, Partial: ansiYellow, Deny: ansiRed, None: ansiDim, Self: ansiDim}

// WriteText prints the matrix for a terminal: rows are sources, columns
// destinations, both numbered in the same order and grouped by namespace
// (the row labels are the key to the column numbers), one symbol per cell,
// then a legend and, for the first partly allowed cells (up to 20), which
// ports are allowed.
// With no pods it prints a line saying so.
func (m *Matrix) WriteText(w io.Writer, opt TextOptions) error {
	p := &printer{color: opt.Color}
	if len(m.Pods) == 0 {
		p.line("no pods selected")
		return p.flush(w)
	}
	n := len(m.Pods)
	d := len(strconv.Itoa(n))
	cw := d + 1 // a column: a space and the number (or the symbol under its last digit)
	label := 0  // width of the row labels
	for _, pod := range m.Pods {
		label = max(label, 2+d+1+utf8.RuneCountInString(pod.Name))
	}
	for _, g := range m.Groups {
		label = max(label, utf8.RuneCountInString(g.Namespace))
	}
	label++
	sep := func(g int) {
		if g > 0 {
			p.style(ansiDim, " │")
		}
	}

	// Namespace header: each group's name above its columns when every name
	// fits; else a staircase, one name a line from its first column on, with
	// a tick above the first column of the groups named before.
	fits := true
	for _, g := range m.Groups {
		fits = fits && utf8.RuneCountInString(g.Namespace) <= g.Count*cw-1
	}
	if fits {
		p.pad(label)
		for gi, g := range m.Groups {
			sep(gi)
			p.style(ansiBold, " "+g.Namespace)
			p.pad(g.Count*cw - 1 - utf8.RuneCountInString(g.Namespace))
		}
		p.endLine()
	} else {
		// at[k] is the position of group k's first symbol.
		at := make([]int, len(m.Groups))
		pos := label
		for gi, g := range m.Groups {
			if gi > 0 {
				pos += 2
			}
			at[gi] = pos + cw - 1
			pos += g.Count * cw
		}
		for k, g := range m.Groups {
			col := 0
			for j := range k {
				p.pad(at[j] - col)
				p.style(ansiDim, "╎")
				col = at[j] + 1
			}
			p.pad(at[k] - col)
			p.style(ansiBold, g.Namespace)
			p.endLine()
		}
	}
	// Column numbers.
	p.pad(label)
	for gi, g := range m.Groups {
		sep(gi)
		for j := g.First; j < g.First+g.Count; j++ {
			p.text(fmt.Sprintf("%*d", cw, j+1))
		}
	}
	p.endLine()
	// Rows, a namespace heading before each group's.
	for _, rg := range m.Groups {
		p.style(ansiBold, rg.Namespace)
		p.pad(label - utf8.RuneCountInString(rg.Namespace))
		for gi, g := range m.Groups {
			sep(gi)
			p.pad(g.Count * cw)
		}
		p.endLine()
		for i := rg.First; i < rg.First+rg.Count; i++ {
			name := fmt.Sprintf("  %*d %s", d, i+1, m.Pods[i].Name)
			p.text(name)
			p.pad(label - utf8.RuneCountInString(name))
			for gi, g := range m.Groups {
				sep(gi)
				for j := g.First; j < g.First+g.Count; j++ {
					c := m.Cell(i, j)
					p.pad(cw - 1)
					style := verdictColors[c.Verdict]
					if c.Self {
						style = ansiDim
					}
					p.style(style, symbols[c.Verdict])
				}
			}
			p.endLine()
		}
	}

	// Legend.
	p.line("")
	for k, v := range []Verdict{Allow, Partial, Deny, None, Self} {
		if k > 0 {
			p.text("   ")
		}
		p.style(verdictColors[v], symbols[v])
		p.text(" " + legend[v])
	}
	p.endLine()
	c := m.Count()
	p.line(fmt.Sprintf("Rows are sources, columns destinations (numbered as the rows). Ports: %s.", m.Ports))
	p.line(fmt.Sprintf("%d pods, %d pairs (a pod to itself not counted): %d allowed, %d partly, %d denied, %d with no port to test.",
		n, n*(n-1), c.Allow, c.Partial, c.Deny, c.None))
	if c.Partial > 0 {
		p.line("")
		p.line("Partly allowed:")
		listed := 0
		for _, cell := range m.Cells {
			if cell.Verdict != Partial || cell.Self {
				continue
			}
			if listed == maxPartial {
				p.line(fmt.Sprintf("  ... and %d more (-o json or -o html shows them all)", c.Partial-listed))
				break
			}
			listed++
			var allowed, denied []string
			for _, f := range cell.Flows {
				if f.Verdict == Allow {
					allowed = append(allowed, f.Port.String())
				} else {
					denied = append(denied, f.Port.String())
				}
			}
			p.line(fmt.Sprintf("  %s -> %s: allowed %s; denied %s", m.Pods[cell.Src], m.Pods[cell.Dst],
				strings.Join(allowed, ", "), strings.Join(denied, ", ")))
		}
	}
	return p.flush(w)
}

// maxPartial bounds the list of partly allowed cells under the matrix.
const maxPartial = 20

var legend = map[Verdict]string{
	Allow:   "every port allowed",
	Partial: "some ports allowed",
	Deny:    "no port allowed",
	None:    "no port to test",
	Self:    "a pod to itself",
}

// cut shortens s to at most width runes, ending with "…" when cut.
func cut(s string, width int) string {
	if width <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= width {
		return s
	}
	r := []rune(s)
	if width == 1 {
		return string(r[:1])
	}
	return string(r[:width-1]) + "…"
}

// printer collects the text, with or without ANSI styles, trimming the
// spaces that would end a line.
type printer struct {
	color bool
	b     strings.Builder
	cur   strings.Builder
}

func (p *printer) text(s string) { p.cur.WriteString(s) }

func (p *printer) pad(n int) {
	if n > 0 {
		p.cur.WriteString(strings.Repeat(" ", n))
	}
}

func (p *printer) style(style, s string) {
	if p.color && style != "" {
		p.cur.WriteString(style + s + ansiReset)
		return
	}
	p.cur.WriteString(s)
}

func (p *printer) endLine() {
	p.b.WriteString(strings.TrimRight(p.cur.String(), " "))
	p.b.WriteByte('\n')
	p.cur.Reset()
}

func (p *printer) line(s string) {
	p.text(s)
	p.endLine()
}

func (p *printer) flush(w io.Writer) error {
	_, err := io.WriteString(w, p.b.String())
	return err
}
