package backend_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/policy/ir"
)

func TestCheckApply(t *testing.T) {
	ctx := context.Background()
	done, cancel := context.WithCancel(ctx)
	cancel()
	d := &ir.Delta{Base: 3, Generation: 4}
	for _, tc := range []struct {
		name          string
		ctx           context.Context
		d             *ir.Delta
		synced, dirty bool
		held          uint64
		want          string // "" for nil
	}{
		{"fits", ctx, d, true, false, 3, ""},
		{"nil delta first", done, nil, false, true, 0, "test: Apply of a nil delta"},
		{"done context", done, d, true, false, 3, context.Canceled.Error()},
		{"not synced", ctx, d, false, false, 0, "test: Apply before the first Sync"},
		{"dirty", ctx, d, true, true, 3, "test: Apply after a failed change: Sync first"},
		{"other generation", ctx, d, true, false, 2, "test: delta from generation 3 does not apply to generation 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := backend.CheckApply(tc.ctx, "test", tc.d, tc.synced, tc.dirty, tc.held)
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			assert.EqualError(t, err, tc.want)
		})
	}
	assert.ErrorIs(t, backend.CheckApply(done, "test", d, true, false, 3), context.Canceled)
}

func TestChangeTime(t *testing.T) {
	ctx := context.Background()
	_, ok := backend.ChangeTime(ctx)
	assert.False(t, ok, "none by default")
	assert.Equal(t, ctx, backend.WithChangeTime(ctx, time.Time{}), "a zero time changes nothing")
	t0 := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	got, ok := backend.ChangeTime(backend.WithChangeTime(ctx, t0))
	assert.True(t, ok)
	assert.Equal(t, t0, got)
}
