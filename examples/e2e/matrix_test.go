package e2e

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestLiveMatrix writes the demo objects (with the cluster-wide policies) to
// a real API server and runs netpolctl matrix against it with the admin
// kubeconfig, as a new user would: the matrix, in each format and with a
// selection, must equal the one drawn from the same objects in files.
func TestLiveMatrix(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	bin, c := liveDemo(ctx, t)

	var files []string
	for _, f := range whatifFiles {
		files = append(files, "-f", f)
	}
	for _, args := range [][]string{
		{"matrix"},
		{"matrix", "-o", "json"},
		{"matrix", "-n", "shop", "-n", "vault", "--port", "6379", "--port", "http", "-o", "json"},
		{"matrix", "-l", "role in (frontend,db)", "--color", "always"},
	} {
		fromFiles := run(t, bin, append(args, files...)...)
		fromLive := run(t, bin, append(args, "--kubeconfig", c.AdminKubeconfig)...)
		if fromFiles.code != 0 || fromLive.code != 0 {
			t.Fatalf("%v: exit codes %d (files) and %d (live)\nfiles stderr: %s\nlive stderr: %s", args, fromFiles.code, fromLive.code, fromFiles.stderr, fromLive.stderr)
		}
		if fromFiles.stdout != fromLive.stdout {
			t.Errorf("%v: the live matrix differs from the files'\nfiles:\n%s\nlive:\n%s", args, fromFiles.stdout, fromLive.stdout)
		}
	}
	// The page: the same cells; only the header names the source.
	fromFiles := run(t, bin, append([]string{"matrix", "-o", "html"}, files...)...)
	fromLive := run(t, bin, "matrix", "-o", "html", "--kubeconfig", c.AdminKubeconfig)
	if fromLive.code != 0 || !strings.Contains(fromLive.stdout, "from the API server at "+c.Server) {
		t.Errorf("matrix -o html: exit %d, the header does not name the API server at %s; stderr %s", fromLive.code, c.Server, fromLive.stderr)
	}
	cells := func(page string) string {
		if i := strings.Index(page, "<table"); i >= 0 {
			return page[i:]
		}
		t.Errorf("matrix -o html: no table in %q", page)
		return ""
	}
	if cells(fromFiles.stdout) != cells(fromLive.stdout) {
		t.Errorf("matrix -o html: the live page's table differs from the files'")
	}
	// An identity the API server refuses: the resource is named.
	r := run(t, bin, "matrix", "--kubeconfig", c.AgentKubeconfig)
	if r.code != 1 || !strings.Contains(r.stderr, "forbidden") {
		t.Errorf("matrix without RBAC: exit %d, stderr %q", r.code, r.stderr)
	}
}
