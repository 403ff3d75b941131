package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/palisade-net/palisade/backend/iptables"
	"github.com/palisade-net/palisade/backend/nftables"
	"github.com/palisade-net/palisade/policy"
)

func renderCmd() *cobra.Command {
	var files []string
	var backendName, node string
	cmd := &cobra.Command{
		Use:   "render -f PATH",
		Short: "Print the ruleset a backend would program for the given objects (no kernel needed)",
		Example: `  netpolctl render -f examples/demo
  netpolctl render -f examples/demo --node node-1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			engine, _, err := loadEngine(cmd, files, policy.Config{NodeName: node})
			if err != nil {
				return err
			}
			switch backendName {
			case "nftables":
				text, err := nftables.Render(engine.Snapshot())
				if err != nil {
					return err
				}
				fmt.Fprint(cmd.OutOrStdout(), text)
				return nil
			case "iptables":
				text, err := iptables.Render(engine.Snapshot())
				if err != nil {
					return err
				}
				fmt.Fprint(cmd.OutOrStdout(), text)
				return nil
			}
			return fmt.Errorf("--backend %q: want nftables or iptables", backendName)
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "YAML/JSON file or directory of cluster objects (repeatable)")
	cmd.Flags().StringVar(&backendName, "backend", "nftables", "backend whose ruleset to print: nftables or iptables")
	cmd.Flags().StringVar(&node, "node", "", "render for this node's pods only (default: every pod is local)")
	return cmd
}
