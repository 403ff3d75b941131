package backend_test

import (
	"context"
	"errors"
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
		kind          error // nil: the Apply may start
		text          string
		needsSync     bool
	}{
		{"fits", ctx, d, true, false, 3, nil, "", false},
		{"nil delta first", done, nil, false, true, 0, ir.ErrInvalid, "test: Apply: invalid IR: nil delta", true},
		{"done context", done, d, true, false, 3, context.Canceled, context.Canceled.Error(), false},
		{"not synced", ctx, d, false, false, 0, backend.ErrNotSynced, "test: Apply: not synced: Sync first", true},
		{"dirty", ctx, d, true, true, 3, backend.ErrDirty, "test: Apply: a change failed since the last Sync: Sync first", true},
		{"other generation", ctx, d, true, false, 2, backend.ErrStaleBase, "test: Apply: delta from another generation: delta 3→4 does not apply to generation 2", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := backend.CheckApply(tc.ctx, "test", tc.d, tc.synced, tc.dirty, tc.held)
			if tc.kind == nil {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tc.kind)
			assert.EqualError(t, err, tc.text, "the message names the backend and the condition")
			assert.Equal(t, tc.needsSync, backend.NeedsSync(err))
		})
	}
	assert.ErrorIs(t, backend.ErrStaleBase, ir.ErrStaleBase)
	assert.False(t, backend.NeedsSync(errors.New("netlink: EPERM")))
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

// watching is a Backend that implements DriftWatcher.
type watching struct{ plain }

func (watching) Changed(context.Context) (bool, error) { return true, nil }

// plain is a Backend with no optional interface.
type plain struct{}

func (plain) Sync(context.Context, *ir.Snapshot) (backend.SyncReport, error) {
	return backend.SyncReport{}, nil
}
func (plain) Apply(context.Context, *ir.Delta) error { return nil }
func (plain) Cleanup(context.Context) error          { return nil }

// wrapper decorates a Backend and exposes it with Unwrap.
type wrapper struct {
	backend.Backend
}

func (w wrapper) Unwrap() backend.Backend { return w.Backend }

func TestAs(t *testing.T) {
	w := watching{}
	for _, tc := range []struct {
		name string
		be   backend.Backend
		want bool
	}{
		{"the backend itself", w, true},
		{"wrapped", wrapper{w}, true},
		{"wrapped twice", wrapper{wrapper{w}}, true},
		{"no optional interface", plain{}, false},
		{"wrapped, none", wrapper{plain{}}, false},
		{"wrapping nil", wrapper{nil}, false},
		{"nil", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := backend.As[backend.DriftWatcher](tc.be)
			assert.Equal(t, tc.want, ok)
			if tc.want {
				assert.Equal(t, backend.DriftWatcher(w), got)
			} else {
				assert.Nil(t, got)
			}
		})
	}
}
