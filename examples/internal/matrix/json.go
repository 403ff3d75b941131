package matrix

import (
	"encoding/json"
	"io"
)

// JSON is the matrix as WriteJSON prints it, for tools.
type JSON struct {
	// Ports describes the ports asked.
	Ports string `json:"ports"`
	// Pods are in matrix order: sorted by namespace, then name.
	Pods       []Pod      `json:"pods"`
	Namespaces []Group    `json:"namespaces"`
	Counts     JSONCounts `json:"counts"`
	// Cells are source-major: every source with every destination, the
	// diagonal included.
	Cells []JSONCell `json:"cells"`
}

// JSONCounts are Counts as JSON.
type JSONCounts struct {
	Allow   int `json:"allow"`
	Partial int `json:"partial"`
	Deny    int `json:"deny"`
	None    int `json:"none"`
}

// JSONCell is one cell as JSON.
type JSONCell struct {
	Src     string  `json:"src"`
	Dst     string  `json:"dst"`
	Verdict Verdict `json:"verdict"`
	Flows   []Flow  `json:"flows"`
}

// WriteJSON writes the matrix as one indented JSON object (see JSON). With
// no pods the lists are empty, not null.
func (m *Matrix) WriteJSON(w io.Writer) error {
	c := m.Count()
	out := JSON{
		Ports:      m.Ports,
		Pods:       append([]Pod{}, m.Pods...),
		Namespaces: append([]Group{}, m.Groups...),
		Counts:     JSONCounts{Allow: c.Allow, Partial: c.Partial, Deny: c.Deny, None: c.None},
		Cells:      make([]JSONCell, 0, len(m.Cells)),
	}
	for _, cell := range m.Cells {
		out.Cells = append(out.Cells, JSONCell{
			Src: m.Pods[cell.Src].String(), Dst: m.Pods[cell.Dst].String(),
			Verdict: cell.Verdict, Flows: append([]Flow{}, cell.Flows...),
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
