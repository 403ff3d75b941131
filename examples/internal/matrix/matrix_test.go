package matrix

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBuildSortsAndGroups(t *testing.T) {
	m, err := Build(pods("shop/web-10", "shop/web-2", "analytics/report-1", "shop/db-0", "shop/web-2", "monitoring/prometheus-0"), nil, "80/TCP")
	require.NoError(t, err)
	var got []string
	for _, p := range m.Pods {
		got = append(got, p.String())
	}
	assert.Equal(t, []string{"analytics/report-1", "monitoring/prometheus-0", "shop/db-0", "shop/web-2", "shop/web-10"}, got,
		"sorted by namespace then name, numbers by value, the duplicate once")
	assert.Equal(t, []Group{{"analytics", 0, 1}, {"monitoring", 1, 1}, {"shop", 2, 3}}, m.Groups)
	assert.Len(t, m.Cells, 25)
	for i := range m.Pods {
		for j := range m.Pods {
			c := m.Cell(i, j)
			assert.Equal(t, [2]int{i, j}, [2]int{c.Src, c.Dst})
			if i == j {
				assert.Equal(t, Self, c.Verdict, "the diagonal without flows")
			} else {
				assert.Equal(t, None, c.Verdict, "no flow given: no port to test")
			}
		}
	}
}

func TestNaturalCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"web-2", "web-10", -1},
		{"web-10", "web-2", 1},
		{"web-2", "web-2", 0},
		{"a", "b", -1},
		{"web", "web-1", -1},
		{"web-007", "web-7", 0}, // equal by value; comparePods breaks the tie
		{"10", "9a", 1},
		{"", "", 0},
	} {
		assert.Equal(t, tc.want, naturalCompare(tc.a, tc.b), "%q vs %q", tc.a, tc.b)
	}
	m, err := Build(pods("ns/web-7", "ns/web-007"), nil, "")
	require.NoError(t, err)
	assert.Equal(t, pods("ns/web-007", "ns/web-7"), m.Pods, "ties in natural order fall back to byte order")
}

func TestBuildFoldsVerdicts(t *testing.T) {
	np := by("NetworkPolicy", "shop", "db", "0")
	for _, tc := range []struct {
		name  string
		flows []Result
		want  Verdict
	}{
		{"one port allowed", []Result{flow("ns/a", "ns/b", 80, "TCP", "", open, open)}, Allow},
		{"every port allowed", []Result{flow("ns/a", "ns/b", 80, "TCP", "", open, open), flow("ns/a", "ns/b", 53, "UDP", "", open, np)}, Allow},
		{"denied at egress", []Result{flow("ns/a", "ns/b", 80, "TCP", "", isolated, open)}, Deny},
		{"denied at ingress", []Result{flow("ns/a", "ns/b", 80, "TCP", "", open, isolated)}, Deny},
		{"some ports", []Result{flow("ns/a", "ns/b", 6379, "TCP", "redis", open, np), flow("ns/a", "ns/b", 9121, "TCP", "metrics", open, isolated)}, Partial},
		{"no flow", nil, None},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Build(pods("ns/a", "ns/b"), tc.flows, "")
			require.NoError(t, err)
			assert.Equal(t, tc.want, m.Cell(0, 1).Verdict)
			assert.Equal(t, None, m.Cell(1, 0).Verdict, "the other direction has no flow")
			assert.Len(t, m.Cell(0, 1).Flows, len(tc.flows))
		})
	}
}

func TestBuildSortsFlowsAndKeepsEnds(t *testing.T) {
	np := by("NetworkPolicy", "shop", "db-from-frontend", "0")
	m, err := Build(pods("shop/web-1", "shop/db-0"), []Result{
		flow("shop/web-1", "shop/db-0", 9121, "TCP", "metrics", open, isolated),
		flow("shop/web-1", "shop/db-0", 53, "UDP", "dns", open, open),
		flow("shop/web-1", "shop/db-0", 6379, "TCP", "redis", open, np),
	}, "")
	require.NoError(t, err)
	c := m.Cell(1, 0) // web-1 sorts after db-0
	require.Equal(t, Partial, c.Verdict)
	var ports []string
	for _, f := range c.Flows {
		ports = append(ports, f.Port.String())
	}
	assert.Equal(t, []string{"6379/TCP (redis)", "9121/TCP (metrics)", "53/UDP (dns)"}, ports, "by protocol, then number")
	assert.Equal(t, Allow, c.Flows[0].Verdict)
	assert.Equal(t, "NetworkPolicy shop/db-from-frontend", c.Flows[0].Ingress.Policy())
	assert.Equal(t, Deny, c.Flows[1].Verdict)
	assert.Equal(t, "", c.Flows[1].Ingress.Policy(), "isolated, no rule matched: no single policy")
}

func TestBuildSelfFlows(t *testing.T) {
	self := flow("ns/a", "ns/a", 80, "TCP", "", open, open)
	self.Reason = "traffic of a pod to itself never leaves the pod"
	m, err := Build(pods("ns/a", "ns/b"), []Result{self}, "")
	require.NoError(t, err)
	assert.Equal(t, Allow, m.Cell(0, 0).Verdict, "a flow given for the diagonal decides it")
	assert.True(t, m.Cell(0, 0).Self)
	assert.Equal(t, Self, m.Cell(1, 1).Verdict)
	assert.Equal(t, Counts{None: 2}, m.Count(), "the diagonal is not counted")
}

func TestBuildErrors(t *testing.T) {
	ps := pods("ns/a", "ns/b")
	for _, tc := range []struct {
		name  string
		flows []Result
		want  string
	}{
		{"unknown source", []Result{flow("ns/x", "ns/b", 80, "TCP", "", open, open)}, "source pod ns/x is not among the matrix's pods"},
		{"unknown destination", []Result{flow("ns/a", "other/b", 80, "TCP", "", open, open)}, "destination pod other/b is not among the matrix's pods"},
		{"twice", []Result{flow("ns/a", "ns/b", 80, "TCP", "http", open, open), flow("ns/a", "ns/b", 80, "TCP", "", open, isolated)}, "flow ns/a -> ns/b 80/TCP: given twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(ps, tc.flows, "")
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestCellOutOfRangePanics(t *testing.T) {
	m, err := Build(pods("ns/a"), nil, "")
	require.NoError(t, err)
	assert.PanicsWithValue(t, "matrix: cell (0, 1) out of range [0, 1)", func() { m.Cell(0, 1) })
}

// demoLike is a small matrix with every kind of cell.
func demoLike(t *testing.T) *Matrix {
	t.Helper()
	np := by("NetworkPolicy", "shop", "db-from-frontend", "0")
	m, err := Build(pods("shop/web-1", "shop/db-0", "monitoring/prometheus-0", "analytics/report-1"), []Result{
		flow("shop/web-1", "shop/db-0", 6379, "TCP", "redis", open, np),
		flow("shop/web-1", "shop/db-0", 9121, "TCP", "metrics", open, isolated),
		flow("monitoring/prometheus-0", "shop/db-0", 6379, "TCP", "redis", open, isolated),
		flow("monitoring/prometheus-0", "shop/db-0", 9121, "TCP", "metrics", open, isolated),
		flow("shop/db-0", "shop/web-1", 8080, "TCP", "http", isolated, open),
		flow("shop/web-1", "monitoring/prometheus-0", 9090, "TCP", "web", open, open),
		flow("shop/db-0", "monitoring/prometheus-0", 9090, "TCP", "web", isolated, open),
		flow("analytics/report-1", "monitoring/prometheus-0", 9090, "TCP", "web", open, open),
		flow("analytics/report-1", "shop/db-0", 6379, "TCP", "redis", open, isolated),
		flow("analytics/report-1", "shop/db-0", 9121, "TCP", "metrics", open, isolated),
		flow("analytics/report-1", "shop/web-1", 8080, "TCP", "http", open, isolated),
		flow("monitoring/prometheus-0", "shop/web-1", 8080, "TCP", "http", open, isolated),
	}, "each destination's container ports")
	require.NoError(t, err)
	return m
}

func TestWriteTextPlain(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, demoLike(t).WriteText(&b, TextOptions{}))
	// "shop" would not fit above its two columns: the names go in a
	// staircase.
	want := `                  analytics
                  ╎   monitoring
                  ╎   ╎   shop
                  1 │ 2 │ 3 4
analytics           │   │
  1 report-1      ╲ │ ✓ │ ✗ ✗
monitoring          │   │
  2 prometheus-0  · │ ╲ │ ✗ ✗
shop                │   │
  3 db-0          · │ ✗ │ ╲ ✗
  4 web-1         · │ ✓ │ ◐ ╲

✓ every port allowed   ◐ some ports allowed   ✗ no port allowed   · no port to test   ╲ a pod to itself
Rows are sources, columns destinations (numbered as the rows). Ports: each destination's container ports.
4 pods, 12 pairs (a pod to itself not counted): 2 allowed, 1 partly, 6 denied, 3 with no port to test.

Partly allowed:
  shop/web-1 -> shop/db-0: allowed 6379/TCP (redis); denied 9121/TCP (metrics)
`
	assert.Equal(t, want, b.String())
	assert.NotContains(t, b.String(), "\x1b[", "plain text has no ANSI codes")
}

func TestWriteTextColor(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, demoLike(t).WriteText(&b, TextOptions{Color: true}))
	out := b.String()
	assert.Contains(t, out, ansiGreen+"✓"+ansiReset)
	assert.Contains(t, out, ansiRed+"✗"+ansiReset)
	assert.Contains(t, out, ansiYellow+"◐"+ansiReset)
	assert.Contains(t, out, ansiBold+"shop"+ansiReset)
	var plain bytes.Buffer
	require.NoError(t, demoLike(t).WriteText(&plain, TextOptions{}))
	assert.Equal(t, plain.String(), stripANSI(out), "colour changes nothing but the styles")
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			for i < len(s) && s[i] != 'm' {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	// Lines whose styled end hid trailing spaces from the trimming.
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

func TestWriteTextEmpty(t *testing.T) {
	m, err := Build(nil, nil, "80/TCP")
	require.NoError(t, err)
	var b bytes.Buffer
	require.NoError(t, m.WriteText(&b, TextOptions{}))
	assert.Equal(t, "no pods selected\n", b.String())
}

// big is a matrix of n pods over namespaces of up to per pods each, every
// third pair allowed, every fifth partly.
func big(t testing.TB, n, per int) *Matrix {
	var ps []Pod
	for i := range n {
		ps = append(ps, Pod{Namespace: fmt.Sprintf("team-%d", i/per), Name: fmt.Sprintf("service-%d-7f9c4d-x%d", i, i)})
	}
	var rs []Result
	for i, s := range ps {
		for j, d := range ps {
			if i == j {
				continue
			}
			switch {
			case (i+j)%5 == 0:
				rs = append(rs, flow(s.String(), d.String(), 80, "TCP", "http", open, open), flow(s.String(), d.String(), 9090, "TCP", "metrics", open, isolated))
			case (i+j)%3 == 0:
				rs = append(rs, flow(s.String(), d.String(), 80, "TCP", "http", open, open))
			default:
				rs = append(rs, flow(s.String(), d.String(), 80, "TCP", "http", open, isolated))
			}
		}
	}
	m, err := Build(ps, rs, "80/TCP, 9090/TCP")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// At 30×30 the terminal matrix stays narrow: a column is three characters,
// headers are numbers keyed by the row labels.
func TestWriteText30Pods(t *testing.T) {
	m := big(t, 30, 7)
	var b bytes.Buffer
	require.NoError(t, m.WriteText(&b, TextOptions{}))
	lines := strings.Split(b.String(), "\n")
	// The last namespace has two pods: its name does not fit above them, so
	// the names go in a staircase, one line each, then the numbers.
	top := len(m.Groups)
	assert.Equal(t, "team-4", strings.TrimSpace(strings.ReplaceAll(lines[top-1], "╎", "")))
	width := 0
	for _, l := range lines[top : top+1+len(m.Groups)+30] {
		width = max(width, utf8.RuneCountInString(l))
	}
	// Labels ("  30 service-29-7f9c4d-x29 ") + 30 columns of 3 + 4 separators.
	assert.Equal(t, 27+30*3+4*2, width)
	// The partly allowed cells are listed up to a bound.
	assert.Equal(t, maxPartial, strings.Count(b.String(), ": allowed 80/TCP (http); denied 9090/TCP (metrics)"))
	assert.Contains(t, b.String(), fmt.Sprintf("  ... and %d more (-o json or -o html shows them all)\n", m.Count().Partial-maxPartial))
	for i, p := range m.Pods {
		assert.Equal(t, 1, strings.Count(b.String(), fmt.Sprintf(" %d %s ", i+1, p.Name)), "row label of %s once", p)
	}
	header := strings.Fields(strings.ReplaceAll(lines[top], "│", " "))
	require.Len(t, header, 30)
	assert.Equal(t, "1", header[0])
	assert.Equal(t, "30", header[29])
	// Every row has one symbol per column.
	for i := range m.Pods {
		row := lines[top+1+i+1+groupOf(m, i)]
		cells := strings.Fields(strings.ReplaceAll(row[strings.Index(row, m.Pods[i].Name)+len(m.Pods[i].Name):], "│", " "))
		assert.Len(t, cells, 30, "row %d: %q", i+1, row)
	}
}

func groupOf(m *Matrix, i int) int {
	for k, g := range m.Groups {
		if i < g.First+g.Count {
			return k
		}
	}
	return -1
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, demoLike(t).WriteJSON(&b))
	var got JSON
	require.NoError(t, json.Unmarshal(b.Bytes(), &got))
	assert.Equal(t, "each destination's container ports", got.Ports)
	assert.Len(t, got.Pods, 4)
	assert.Len(t, got.Cells, 16)
	assert.Equal(t, JSONCounts{Allow: 2, Partial: 1, Deny: 6, None: 3}, got.Counts)
	var partial *JSONCell
	for i := range got.Cells {
		if got.Cells[i].Src == "shop/web-1" && got.Cells[i].Dst == "shop/db-0" {
			partial = &got.Cells[i]
		}
	}
	require.NotNil(t, partial)
	assert.Equal(t, Partial, partial.Verdict)
	require.Len(t, partial.Flows, 2)
	assert.Equal(t, Port{Port: 6379, Protocol: "TCP", Name: "redis"}, partial.Flows[0].Port)
	assert.Equal(t, "db-from-frontend", partial.Flows[0].Ingress.Name)
	assert.Equal(t, "NetworkPolicy", partial.Flows[0].Ingress.Tier)
	assert.Equal(t, "0", partial.Flows[0].Ingress.Rule)

	m, err := Build(nil, nil, "")
	require.NoError(t, err)
	b.Reset()
	require.NoError(t, m.WriteJSON(&b))
	assert.JSONEq(t, `{"ports":"","pods":[],"namespaces":[],"counts":{"allow":0,"partial":0,"deny":0,"none":0},"cells":[]}`, b.String())
}

// The page's text checks; the browser tests check what it renders.
func TestWriteHTML(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, demoLike(t).WriteHTML(&b, HTMLOptions{Source: "files examples/demo"}))
	page := b.String()
	assert.Contains(t, page, `title="shop/web-1 → shop/db-0: partly allowed
6379/TCP (redis): allow; egress: allowed (no policy decides); ingress: allowed by NetworkPolicy shop/db-from-frontend rule 0
9121/TCP (metrics): deny; egress: allowed (no policy decides); ingress: denied (isolated by NetworkPolicy, no rule matched)">◐</td>`)
	assert.Equal(t, 16, strings.Count(page, `<td class="c `), "one cell per pair")
	assert.NotContains(t, page, "http://", "nothing fetched from the network")
	assert.NotContains(t, page, "https://")

	m, err := Build(pods(`ns/<script>alert(1)</script>`), nil, "")
	require.NoError(t, err)
	b.Reset()
	require.NoError(t, m.WriteHTML(&b, HTMLOptions{}))
	assert.NotContains(t, b.String(), "<script>alert", "names are escaped")

	m, err = Build(nil, nil, "")
	require.NoError(t, err)
	b.Reset()
	require.NoError(t, m.WriteHTML(&b, HTMLOptions{}))
	assert.Contains(t, b.String(), "No pods selected.")
}

// The pod order is a total order: antisymmetric, and equal only for the
// same pod, so Build's sort is deterministic whatever the names.
func FuzzPodOrder(f *testing.F) {
	for _, seed := range [][2]string{{"web-2", "web-10"}, {"web-007", "web-7"}, {"a1b2", "a01b2"}, {"", "0"}, {"9", "10"}} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		sign := func(x int) int { return min(1, max(-1, x)) }
		if sign(naturalCompare(a, b)) != -sign(naturalCompare(b, a)) {
			t.Fatalf("naturalCompare(%q, %q) = %d but reversed %d", a, b, naturalCompare(a, b), naturalCompare(b, a))
		}
		pa, pb := Pod{Namespace: "ns", Name: a}, Pod{Namespace: "ns", Name: b}
		if c := comparePods(pa, pb); (c == 0) != (a == b) || sign(c) != -sign(comparePods(pb, pa)) {
			t.Fatalf("comparePods(%q, %q) = %d, reversed %d", a, b, c, comparePods(pb, pa))
		}
	})
}
