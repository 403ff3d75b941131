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
