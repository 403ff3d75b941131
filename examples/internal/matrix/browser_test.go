package matrix

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/examples/internal/manifest"
	"github.com/palisade-net/palisade/examples/internal/reach"
	"github.com/palisade-net/palisade/policy/ir"
)

// These tests open the HTML page in a real headless Chromium (Debian's
// chromium package; CI installs it) and check what it renders: the cells'
// verdict classes, the tooltips, escaping. Each saves screenshots into its
// artifact directory (go test -artifacts keeps them; the path is logged).

// browser starts a headless Chromium for one test, or skips the test when
// none is installed.
func browser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Skip("no chromium on PATH (Debian: apt-get install chromium; CI installs it): the HTML page is not tested in a browser")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("force-device-scale-factor", "1"),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses root without it
	}
	// A bound on the whole browser's life: a Chromium that hangs fails the
	// test instead of stalling the suite.
	life, cancelLife := context.WithTimeout(context.Background(), 3*time.Minute)
	actx, cancelAlloc := chromedp.NewExecAllocator(life, opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		cancelLife()
	})
	return ctx
}

// openPage writes m's page into the test's artifacts and loads it.
func openPage(t *testing.T, ctx context.Context, m *Matrix, opt HTMLOptions) string {
	t.Helper()
	dir := t.ArtifactDir()
	path := filepath.Join(dir, "matrix.html")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WriteHTML(f, opt); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("page and screenshots in %s", dir)
	// The first Run starts the browser: no timeout on it (see chromedp.Run).
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+path), chromedp.WaitReady("#matrix")); err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return dir
}

// eval runs a JavaScript expression in the page and decodes its JSON value.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string]("JSON.stringify("+expr+")"))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("evaluate %s: %q: %v", expr, s, err)
	}
	return v
}

// screenshot saves the viewport as a PNG in dir.
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// renderedCell is a cell as the browser shows it.
type renderedCell struct {
	Src, Dst string
	Classes  []string
	Text     string
	Label    string // aria-label: the title the page's script took over
}

// renderedCells reads every cell of the page's table, naming its source and
// destination by the row and column headers' titles.
func renderedCells(t *testing.T, ctx context.Context) []renderedCell {
	return eval[[]renderedCell](t, ctx, `(() => {
		const heads = [...document.querySelectorAll("th.colh")].map(th => th.title);
		const out = [];
		for (const tr of document.querySelectorAll("#matrix tbody tr[data-i]")) {
			const src = tr.querySelector("th.rowh").title;
			for (const td of tr.querySelectorAll("td.c")) {
				out.push({Src: src, Dst: heads[+td.dataset.j], Classes: [...td.classList], Text: td.textContent, Label: td.getAttribute("aria-label")});
			}
		}
		return out;
	})()`)
}

// hover moves the mouse over the cell from src to dst and returns the
// tooltip's text once it shows.
func hover(t *testing.T, ctx context.Context, src, dst string) string {
	t.Helper()
	at := eval[struct{ X, Y float64 }](t, ctx, fmt.Sprintf(`(() => {
		const pods = JSON.parse(document.getElementById("data").textContent).pods;
		const i = pods.indexOf(%q), j = pods.indexOf(%q);
		const td = document.querySelector('#matrix tr[data-i="' + i + '"] td[data-j="' + j + '"]');
		td.scrollIntoView({block: "center", inline: "center"});
		const r = td.getBoundingClientRect();
		return {X: r.left + r.width / 2, Y: r.top + r.height / 2};
	})()`, src, dst))
	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.MouseEvent(chromedp.MouseMoved, at.X, at.Y)); err != nil {
		t.Fatalf("hover %s -> %s: %v", src, dst, err)
	}
	// The tip is position: fixed, which chromedp's visibility check does
	// not take for visible: ask the page.
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`!document.getElementById("tip").hidden || null`)); err != nil {
		t.Fatalf("hover %s -> %s: no tooltip: %v", src, dst, err)
	}
	return eval[string](t, ctx, `document.getElementById("tip").textContent`)
}

// TestHTMLEscapesNames renders pods and a policy whose names are markup and
// checks, in the browser, that they show as text and inject nothing.
func TestHTMLEscapesNames(t *testing.T) {
	ctx := browser(t)
	evil := `<img id="injected" src=x onerror="window.pwned=1">`
	policyName := `</script><script>window.pwned=2</script>`
	deny := End{Allowed: false, Tier: "NetworkPolicy", Kind: "NetworkPolicy", Namespace: "ns<i>", Name: policyName, Rule: "0",
		Summary: "denied by NetworkPolicy/ns<i>/" + policyName + " rule 0"}
	ps := pods("ns<i>/"+evil, "ns<i>/web")
	m, err := Build(ps, []Result{
		flow("ns<i>/web", "ns<i>/"+evil, 80, "TCP", "<b>http</b>", open, deny),
		flow("ns<i>/"+evil, "ns<i>/web", 80, "TCP", "", open, open),
	}, "80/TCP")
	if err != nil {
		t.Fatal(err)
	}
	dir := openPage(t, ctx, m, HTMLOptions{Source: "files <u>x</u>", Selection: "<em>all</em>"})

	injected := eval[map[string]any](t, ctx, `({
		img: document.getElementById("injected") !== null,
		elements: document.querySelectorAll("img, i, u, em, #tip b").length,
		pwned: window.pwned === undefined ? 0 : window.pwned,
		header: document.querySelector("p.sub").textContent,
		row: [...document.querySelectorAll("th.rowh")].map(th => th.textContent),
		ns: document.querySelector("th.nsh").textContent,
	})`)
	if injected["img"] != false || injected["elements"] != 0.0 || injected["pwned"] != 0.0 {
		t.Errorf("markup in names became elements or ran: %v", injected)
	}
	if want := []any{evil, "web"}; fmt.Sprint(injected["row"]) != fmt.Sprint(want) {
		t.Errorf("row headers show %q, want the names as text %q", injected["row"], want)
	}
	if injected["ns"] != "ns<i>" {
		t.Errorf("namespace header shows %q, want %q", injected["ns"], "ns<i>")
	}
	tip := hover(t, ctx, "ns<i>/web", "ns<i>/"+evil)
	screenshot(t, ctx, dir, "escape-hover.png")
	for _, want := range []string{"ns<i>/web → ns<i>/" + evil, "NetworkPolicy ns<i>/" + policyName, "80/TCP (<b>http</b>)"} {
		if !strings.Contains(tip, want) {
			t.Errorf("tooltip %q does not show %q as text", tip, want)
		}
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#tip *:is(img, b, i, script)").length`); n != 0 {
		t.Errorf("tooltip holds %d elements made from names", n)
	}
}

// The demo with port 6379 at every pod: db-0 admits it only from the
// role: frontend pods (web-1, web-2). The page must show exactly the
// model's verdicts, and a hover must name the policies that decided.
func TestHTMLDemoInBrowser(t *testing.T) {
	ctx := browser(t)
	st, err := manifest.Load("../../demo")
	require.NoError(t, err)
	m, err := Compute(Input{State: st, Selection: reach.Selection{Ports: []reach.Port{{Port: 6379, Protocol: ir.TCP}}}})
	require.NoError(t, err)
	dir := openPage(t, ctx, m, HTMLOptions{Source: "files examples/demo", Selection: "all namespaces"})
	screenshot(t, ctx, dir, "demo.png")

	assert.Equal(t, 0, eval[int](t, ctx, `performance.getEntriesByType("resource").length`), "the page fetches nothing")
	cells := renderedCells(t, ctx)
	require.Len(t, cells, len(m.Pods)*len(m.Pods))
	index := map[string]int{}
	for i, p := range m.Pods {
		index[p.String()] = i
	}
	toDB := map[string]string{}
	for _, c := range cells {
		want := m.Cell(index[c.Src], index[c.Dst])
		assert.Contains(t, c.Classes, string(want.Verdict), "%s -> %s", c.Src, c.Dst)
		assert.Equal(t, c.Src == c.Dst, slices.Contains(c.Classes, "self"), "%s -> %s: the diagonal", c.Src, c.Dst)
		if c.Dst == "shop/db-0" {
			toDB[c.Src] = c.Text
		}
	}
	// The scenario, independently of the model: ✓ from the frontends only.
	assert.Equal(t, map[string]string{
		"analytics/report-1": "✗", "monitoring/prometheus-0": "✗", "shop/api-1": "✗", "shop/db-0": "",
		"shop/web-1": "✓", "shop/web-2": "✓",
	}, toDB)

	// The title, as the page keeps it for screen readers, names the policy.
	label := cellLabel(cells, "shop/web-1", "shop/db-0")
	assert.Contains(t, label, "6379/TCP (redis): allow")
	assert.Contains(t, label, "egress: allowed by NetworkPolicy shop/app-egress rule 0; ingress: allowed by NetworkPolicy shop/db-from-frontend rule 0")
	assert.Contains(t, cellLabel(cells, "shop/api-1", "shop/db-0"),
		"ingress: denied, no rule matched in NetworkPolicy shop/allow-monitoring, NetworkPolicy shop/db-from-frontend, NetworkPolicy shop/default-deny")

	tip := hover(t, ctx, "shop/web-1", "shop/db-0")
	screenshot(t, ctx, dir, "demo-hover-allowed.png")
	for _, want := range []string{
		"shop/web-1 → shop/db-0", "6379/TCP (redis)",
		"egress", "NetworkPolicy tier", "NetworkPolicy shop/app-egress", "· rule 0",
		"ingress", "NetworkPolicy shop/db-from-frontend",
	} {
		assert.Contains(t, tip, want)
	}
	hl := eval[map[string]string](t, ctx, `({
		row: document.querySelector("th.rowh.hl").title,
		col: document.querySelector("th.colh.hl").title,
	})`)
	assert.Equal(t, map[string]string{"row": "shop/web-1", "col": "shop/db-0"}, hl, "the hovered cell's row and column are highlighted")

	// The keyboard: from the first cell, right twice and down once.
	keys := eval[string](t, ctx, `(() => {
		const table = document.getElementById("matrix");
		document.dispatchEvent(new KeyboardEvent("keydown", {key: "Escape"}));
		table.focus();
		for (const key of ["ArrowDown", "ArrowRight", "ArrowRight", "ArrowDown"]) {
			table.dispatchEvent(new KeyboardEvent("keydown", {key, bubbles: true}));
		}
		return document.getElementById("tip").hidden ? "hidden" : document.querySelector("#tip .pair").textContent;
	})()`)
	assert.Equal(t, m.Pods[1].String()+" → "+m.Pods[2].String(), keys, "the arrows start at the first cell and move")

	tip = hover(t, ctx, "shop/api-1", "shop/db-0")
	screenshot(t, ctx, dir, "demo-hover-denied.png")
	assert.Contains(t, tip, "denied")
	assert.Contains(t, tip, "isolated, no rule matched: NetworkPolicy shop/allow-monitoring, NetworkPolicy shop/db-from-frontend, NetworkPolicy shop/default-deny")
}

// The demo with each pod's container ports: web-1 reaches db-0 on redis
// (6379) but not on its exporter's metrics port (9121): partly.
func TestHTMLDemoContainerPortsInBrowser(t *testing.T) {
	ctx := browser(t)
	st, err := manifest.Load("../../demo")
	require.NoError(t, err)
	m, err := Compute(Input{State: st})
	require.NoError(t, err)
	dir := openPage(t, ctx, m, HTMLOptions{Source: "files examples/demo", Selection: "all namespaces"})
	cells := renderedCells(t, ctx)
	var partial int
	for _, c := range cells {
		if slices.Contains(c.Classes, "partial") {
			partial++
			assert.Equal(t, "◐", c.Text)
		}
	}
	assert.Equal(t, m.Count().Partial, partial)
	assert.Equal(t, eval[string](t, ctx, `document.querySelector('#counts [data-verdict="partial"] .n').textContent`), fmt.Sprint(partial))
	tip := hover(t, ctx, "shop/web-1", "shop/db-0")
	screenshot(t, ctx, dir, "demo-ports-hover.png")
	for _, want := range []string{"partly allowed", "6379/TCP (redis)allow", "NetworkPolicy shop/db-from-frontend · rule 0", "9121/TCP (metrics)deny"} {
		assert.Contains(t, tip, want)
	}

	// The port filter: 6379/TCP alone.
	options := eval[[]string](t, ctx, `[...document.querySelectorAll("#port option")].map(o => o.value)`)
	assert.Equal(t, []string{"", "6379/TCP", "8080/TCP", "9000/TCP", "9090/TCP", "9100/TCP", "9121/TCP"}, options)
	eval[bool](t, ctx, `(() => {
		const s = document.getElementById("port");
		s.value = "6379/TCP";
		s.dispatchEvent(new Event("change"));
		return true;
	})()`)
	screenshot(t, ctx, dir, "demo-port-6379.png")
	byPair := map[string]string{}
	for _, c := range renderedCells(t, ctx) {
		for _, v := range []string{"allow", "partial", "deny", "none", "self"} {
			if slices.Contains(c.Classes, v) {
				byPair[c.Src+" "+c.Dst] = v + " " + c.Text
			}
		}
	}
	for pair, want := range map[string]string{
		"shop/web-1 shop/db-0":              "allow ✓", // redis from a frontend
		"shop/web-2 shop/db-0":              "allow ✓",
		"shop/api-1 shop/db-0":              "deny ✗",
		"monitoring/prometheus-0 shop/db-0": "deny ✗",
		"shop/api-1 shop/web-1":             "none ·", // web-1 has no 6379
		"shop/db-0 shop/db-0":               "self ",
	} {
		assert.Equal(t, want, byPair[pair], pair)
	}
	assert.Equal(t, "2", eval[string](t, ctx, `document.querySelector('#counts [data-verdict="allow"] .n').textContent`))
	tip = hover(t, ctx, "shop/web-1", "shop/db-0")
	assert.Contains(t, tip, "6379/TCP (redis)")
	assert.NotContains(t, tip, "9121/TCP", "the tooltip shows the selected port only")
}

func cellLabel(cells []renderedCell, src, dst string) string {
	for _, c := range cells {
		if c.Src == src && c.Dst == dst {
			return c.Label
		}
	}
	return ""
}

// At 30×30 in a small window the matrix scrolls both ways inside its card
// while the column headers stay at the top and the row headers at the left.
func TestHTML30PodsStickyHeaders(t *testing.T) {
	ctx := browser(t)
	m := big(t, 30, 7)
	dir := openPage(t, ctx, m, HTMLOptions{Source: "generated", Selection: "all namespaces"})
	screenshot(t, ctx, dir, "30x30.png")
	require.Len(t, renderedCells(t, ctx), 900)
	vctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, chromedp.Do(vctx, chromedp.EmulateViewport(900, 600)))
	pos := eval[map[string]float64](t, ctx, `(() => {
		const wrap = document.querySelector(".wrap");
		const head = () => document.querySelector("thead").getBoundingClientRect().top;
		const row = () => document.querySelector('tr[data-i="20"] th.rowh').getBoundingClientRect().left;
		const cell = () => document.querySelector('tr[data-i="20"] td[data-j="0"]').getBoundingClientRect().left;
		const before = {head: head(), row: row(), cell: cell()};
		wrap.scrollTop = 300;
		wrap.scrollLeft = 250;
		return {
			scrolledY: wrap.scrollTop, scrolledX: wrap.scrollLeft,
			head: head() - before.head, row: row() - before.row, cell: cell() - before.cell,
		};
	})()`)
	screenshot(t, ctx, dir, "30x30-scrolled.png")
	require.Greater(t, pos["scrolledY"], 0.0, "the matrix scrolls down in a 900×600 window: %v", pos)
	require.Greater(t, pos["scrolledX"], 0.0, "the matrix scrolls right in a 900×600 window: %v", pos)
	assert.Equal(t, 0.0, pos["head"], "the column headers stay at the top")
	assert.Equal(t, 0.0, pos["row"], "the row headers stay at the left")
	assert.Equal(t, -pos["scrolledX"], pos["cell"], "the cells scroll")
}
