package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/palisade-net/palisade/examples/internal/matrix"
	"github.com/palisade-net/palisade/examples/internal/reach"
	"github.com/palisade-net/palisade/examples/internal/source"
	"github.com/palisade-net/palisade/policy/ir"
)

func matrixCmd() *cobra.Command {
	var src source.Flags
	var namespaces, ports []string
	var selector, output, color string
	var all bool
	cmd := &cobra.Command{
		Use:   "matrix (-f PATH | --kubeconfig PATH) [-n NAMESPACE... | -A] [-l SELECTOR] [--port PORT[/PROTOCOL]]... [-o text|html|json]",
		Short: "Show who can reach whom among the selected pods, on the ports asked or their container ports",
		Long: `matrix decides every flow between the selected pods (every ordered pair of
distinct pods, each destination port) with the reference evaluator and prints
the result as a matrix: rows are sources, columns destinations, grouped by
namespace and sorted. A cell is allowed when every port is, denied when none
is, partly allowed otherwise; "no port" when the destination has none to test.

Pods: every namespace by default (-A says so explicitly), or those given
with -n (repeatable, or comma-separated); -l keeps the pods whose labels match a selector (kubectl's
syntax). hostNetwork pods, pods without an IP and finished pods take no part.

Ports: with no --port, each destination's container ports. --port takes a
number (80, 53/UDP; TCP when no protocol is given) or a container port's name
(http, dns/UDP), tried at each destination that has a port of that name.

Output: -o text (the default; colour when stdout is a terminal, see --color),
-o html (one self-contained page: hover a cell for each port's verdict and the
policy that decided at each end), -o json (for tools).`,
		Example: `  netpolctl matrix -f examples/demo
  netpolctl matrix -f examples/demo -n shop --port 6379 --port http
  netpolctl matrix -f examples/demo -f examples/demo-admin -o html > matrix.html
  netpolctl matrix --kubeconfig ~/.kube/config -l 'tier in (app,db)' -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if all && len(namespaces) > 0 {
				return fmt.Errorf("give either -n or -A (--all-namespaces), not both")
			}
			write, err := matrixWriter(output, color, cmd.OutOrStdout(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			numbered, named, err := parseMatrixPorts(ports)
			if err != nil {
				return err
			}
			var nss []string
			for _, n := range namespaces {
				for _, part := range strings.Split(n, ",") {
					if part = strings.TrimSpace(part); part != "" {
						nss = append(nss, part)
					}
				}
			}
			sel, err := reach.NewSelection(nss, selector, "")
			if err != nil {
				return err
			}
			sel.Ports = numbered
			warn := func(msg string) { fmt.Fprintln(cmd.ErrOrStderr(), msg) }
			src.Warn = warn
			st, err := src.Load(cmd.Context())
			if err != nil {
				return err
			}
			for _, ns := range nss {
				if len(reach.Pods(st, reach.Selection{Namespaces: []string{ns}, Selector: sel.Selector})) == 0 {
					warn(fmt.Sprintf("warning: -n %s: no pod selected in this namespace", ns))
				}
			}
			m, err := matrix.Compute(matrix.Input{State: st, Selection: sel, Named: named, Warn: warn})
			if err != nil {
				return err
			}
			return write(m, matrix.HTMLOptions{Source: describeSource(&src), Selection: describeSelection(nss, selector)})
		},
	}
	src.Register(cmd.Flags())
	cmd.Flags().StringArrayVarP(&namespaces, "namespace", "n", nil, "keep the pods of this namespace (repeatable, or comma-separated; default: every namespace)")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "keep the pods of every namespace (the default)")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "keep the pods whose labels match this selector, e.g. 'app=web,tier in (a,b)'")
	cmd.Flags().StringArrayVar(&ports, "port", nil, "try this port at each destination: PORT[/PROTOCOL] or a container port's NAME[/PROTOCOL] (repeatable, or comma-separated; default: each destination's container ports)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text, html or json")
	cmd.Flags().StringVar(&color, "color", "auto", "colour the text output: auto (when stdout is a terminal and NO_COLOR is unset), always or never")
	return cmd
}

// matrixWriter returns the function that prints a matrix in the format
// asked; errors name the flag.
// On a terminal narrower than the matrix, a note on errw suggests the page.
func matrixWriter(output, color string, w, errw io.Writer) (func(*matrix.Matrix, matrix.HTMLOptions) error, error) {
	f, isFile := w.(*os.File)
	tty := isFile && term.IsTerminal(int(f.Fd()))
	var colored bool
	switch color {
	case "always":
		colored = true
	case "never":
	case "auto":
		colored = tty && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
	default:
		return nil, fmt.Errorf("--color %q: want auto, always or never", color)
	}
	switch output {
	case "text":
		return func(m *matrix.Matrix, _ matrix.HTMLOptions) error {
			if cols, _, err := term.GetSize(int(f.Fd())); tty && err == nil {
				var plain strings.Builder
				if err := m.WriteText(&plain, matrix.TextOptions{}); err != nil {
					return err
				}
				// The matrix is the text up to the first blank line.
				block, _, _ := strings.Cut(plain.String(), "\n\n")
				wide := 0
				for _, l := range strings.Split(block, "\n") {
					wide = max(wide, utf8.RuneCountInString(l))
				}
				if wide > cols {
					fmt.Fprintf(errw, "note: the matrix is %d columns wide, the terminal %d: -o html > matrix.html shows it whole\n", wide, cols)
				}
			}
			return m.WriteText(w, matrix.TextOptions{Color: colored})
		}, nil
	case "html":
		return func(m *matrix.Matrix, opt matrix.HTMLOptions) error { return m.WriteHTML(w, opt) }, nil
	case "json":
		return func(m *matrix.Matrix, _ matrix.HTMLOptions) error { return m.WriteJSON(w) }, nil
	}
	return nil, fmt.Errorf("--output %q: want text, html or json", output)
}

// parseMatrixPorts splits the --port values (each one port, or several
// separated by commas as diff's --ports takes them) into numbered ports and
// named ones. Errors name each bad value.
func parseMatrixPorts(values []string) ([]reach.Port, []matrix.NamedPort, error) {
	var numbered []reach.Port
	var named []matrix.NamedPort
	var bad []string
	var split []string
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				split = append(split, item)
			}
		}
	}
	for _, v := range split {
		name, proto, _ := strings.Cut(v, "/")
		if name != "" && strings.Trim(name, "0123456789") == "" {
			ps, err := reach.ParsePorts(v)
			if err != nil || len(ps) != 1 {
				bad = append(bad, fmt.Sprintf("%q: want a port 1-65535, optionally /TCP, /UDP or /SCTP", v))
				continue
			}
			numbered = append(numbered, ps[0])
			continue
		}
		np := matrix.NamedPort{Name: name}
		if proto != "" {
			p, ok := ir.ParseProtocol(strings.ToUpper(proto))
			if !ok {
				bad = append(bad, fmt.Sprintf("%q: protocol %q is not TCP, UDP or SCTP", v, proto))
				continue
			}
			np.Protocol = p
		}
		if msgs := validation.IsValidPortName(name); len(msgs) > 0 {
			bad = append(bad, fmt.Sprintf("%q: neither a port number nor a port name (%s)", v, strings.Join(msgs, "; ")))
			continue
		}
		named = append(named, np)
	}
	if len(bad) > 0 {
		return nil, nil, fmt.Errorf("--port %s", strings.Join(bad, "; --port "))
	}
	return numbered, named, nil
}

func describeSource(src *source.Flags) string {
	if len(src.Files) > 0 {
		return "files " + strings.Join(src.Files, ", ")
	}
	return src.Describe()
}

func describeSelection(namespaces []string, selector string) string {
	out := "all namespaces"
	if len(namespaces) > 0 {
		out = "namespaces " + strings.Join(namespaces, ", ")
	}
	if selector != "" {
		out += "; pods matching " + selector
	}
	return out
}
