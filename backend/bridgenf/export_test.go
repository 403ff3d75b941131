package bridgenf

import (
	"os"

	"github.com/vishvananda/netns"

	"github.com/palisade-net/palisade/backend/internal/nsthread"
)

// WriteIn writes a sysctl in the namespace ns (tests only).
func WriteIn(ns netns.NsHandle, path, v string) error {
	return nsthread.Do(int(ns), func() error { return os.WriteFile(path, []byte(v), 0o644) })
}

// ReadIn reads a file from a thread in the namespace ns (tests only).
func ReadIn(ns netns.NsHandle, path string) error {
	return nsthread.Do(int(ns), func() error { _, err := os.ReadFile(path); return err })
}
