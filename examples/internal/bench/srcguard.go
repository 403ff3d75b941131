package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"slices"

	"github.com/palisade-net/palisade/policy"
)

// SourceValidationFigures compare the datapath with and without source
// validation, on the same cluster (the bench pair and every synthetic pod
// as local endpoints, with the first policy count), each run paired with the
// reference node as every datapath run is. The runs alternate, off then
// on, Rounds times; the figures are the medians over the rounds.
type SourceValidationFigures struct {
	Policies int `json:"policies"`
	Rounds   int `json:"rounds"`
	// Off and On are the paired overheads (median of per-round
	// differences against the reference, µs) of each round.
	OffPairedOverheadMicros []float64 `json:"offPairedOverheadMicros"`
	OnPairedOverheadMicros  []float64 `json:"onPairedOverheadMicros"`
	// AddedMedianMicros is the median of On minus that of Off: what source
	// validation adds to the first packets (SYN and SYN-ACK through the
	// node under test).
	AddedMedianMicros float64 `json:"addedMedianMicros"`
	OffConnsRatio     float64 `json:"offConnsRatio"`
	OnConnsRatio      float64 `json:"onConnsRatio"`
	// ForgedDropped is the guard's drop counter after the runs: 0, since
	// no packet of the bench is forged.
	ForgedDropped uint64   `json:"forgedDropped"`
	Notes         []string `json:"notes"`
}

const sourceValidationRounds = 4

func sourceValidationRuns(ctx context.Context, m *pairedMeter, s *backendSession, cfg Config, k int) (*SourceValidationFigures, error) {
	fig := &SourceValidationFigures{Policies: k, Rounds: sourceValidationRounds,
		Notes: []string{
			"on: every endpoint has an interface (the bench pair their lab veths, the synthetic pods names of their own), so the guard sets hold every pod's (interface, address) pairs; off: the same cluster with no interface",
			"the bench pods are on routed veths: the inet table's prerouting chain is on the path (one set lookup per packet from a pod); the bridge table's chain is not",
		}}
	guarded := policy.Config{Interface: func(podID string, _ []netip.Addr) string {
		if name := m.l.HostLink(podID); name != "" {
			return name
		}
		h := sha256.Sum256([]byte(podID))
		return "sv" + hex.EncodeToString(h[:6])
	}}
	var offRatio, onRatio []float64
	for range sourceValidationRounds {
		off, err := policyRunWith(ctx, m, s, cfg, policy.Config{}, k, addBenchObjects)
		if err != nil {
			return nil, err
		}
		on, err := policyRunWith(ctx, m, s, cfg, guarded, k, addBenchObjects)
		if err != nil {
			return nil, err
		}
		fig.OffPairedOverheadMicros = append(fig.OffPairedOverheadMicros, off.PairedOverheadMedianMicros)
		fig.OnPairedOverheadMicros = append(fig.OnPairedOverheadMicros, on.PairedOverheadMedianMicros)
		offRatio = append(offRatio, off.ConnsRatio)
		onRatio = append(onRatio, on.ConnsRatio)
	}
	fig.AddedMedianMicros = round(medianOf(fig.OnPairedOverheadMicros)-medianOf(fig.OffPairedOverheadMicros), 2)
	fig.OffConnsRatio, fig.OnConnsRatio = round(medianOf(offRatio), 3), round(medianOf(onRatio), 3)
	n, err := s.be.ForgedDrops(ctx)
	if err != nil {
		return nil, err
	}
	fig.ForgedDropped = n
	return fig, nil
}

func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
