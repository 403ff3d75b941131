package memory_test

import (
	"testing"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/backendtest"
	"github.com/palisade-net/palisade/backend/memory"
)

func TestContract(t *testing.T) {
	backendtest.RunContract(t, func(testing.TB) backend.Backend { return memory.New(memory.Config{}) })
}
