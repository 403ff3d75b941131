package bench

import (
	"fmt"

	gnft "github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"
)

// countKernel reads the sets and maps of table inet name in ns back from the
// kernel and counts their elements. It only reads.
func countKernel(ns netns.NsHandle, name string) (KernelCount, error) {
	c, err := gnft.New(gnft.WithNetNSFd(int(ns)), gnft.AsLasting())
	if err != nil {
		return KernelCount{}, fmt.Errorf("nftables connection: %w", err)
	}
	defer c.CloseLasting()
	sets, err := c.GetSets(&gnft.Table{Name: name, Family: gnft.TableFamilyINet})
	if err != nil {
		return KernelCount{}, fmt.Errorf("listing the sets of table %s: %w", name, err)
	}
	kc := KernelCount{Sets: len(sets)}
	for _, s := range sets {
		els, err := c.GetSetElements(s)
		if err != nil {
			return KernelCount{}, fmt.Errorf("listing the elements of set %s: %w", s.Name, err)
		}
		kc.Elements += len(els)
	}
	return kc, nil
}

// tableExists reports whether table inet name exists in ns.
func tableExists(ns netns.NsHandle, name string) (bool, error) {
	c, err := gnft.New(gnft.WithNetNSFd(int(ns)), gnft.AsLasting())
	if err != nil {
		return false, fmt.Errorf("nftables connection: %w", err)
	}
	defer c.CloseLasting()
	tables, err := c.ListTablesOfFamily(gnft.TableFamilyINet)
	if err != nil {
		return false, fmt.Errorf("listing tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == name {
			return true, nil
		}
	}
	return false, nil
}

// conntrackTable is the table of the conntrack-only baseline.
const conntrackTable = "palisade-bench-ct"

// addConntrackTable creates, in ns, a table whose forward chain accepts
// established and related packets and nothing else: it turns connection
// tracking on without any policy.
func addConntrackTable(ns netns.NsHandle) error {
	c, err := gnft.New(gnft.WithNetNSFd(int(ns)))
	if err != nil {
		return fmt.Errorf("nftables connection: %w", err)
	}
	t := c.AddTable(&gnft.Table{Family: gnft.TableFamilyINet, Name: conntrackTable})
	policy := gnft.ChainPolicyAccept
	ch := c.AddChain(&gnft.Chain{Name: "forward", Table: t, Type: gnft.ChainTypeFilter,
		Hooknum: gnft.ChainHookForward, Priority: gnft.ChainPriorityFilter, Policy: &policy})
	c.AddRule(&gnft.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
			Xor:  binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("conntrack baseline table: %w", err)
	}
	return nil
}

// deleteTable removes an inet table of ours from ns.
func deleteTable(ns netns.NsHandle, name string) error {
	c, err := gnft.New(gnft.WithNetNSFd(int(ns)))
	if err != nil {
		return fmt.Errorf("nftables connection: %w", err)
	}
	c.DelTable(&gnft.Table{Family: gnft.TableFamilyINet, Name: name})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("deleting table %s: %w", name, err)
	}
	return nil
}
