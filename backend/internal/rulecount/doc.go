// Package rulecount turns the rule counters a kernel backend reads into
// backend.Counters: it parses the comments both kernel backends write on
// their rules and jumps, sums the kernel rules of one IR rule and of both
// address families, and resolves each rule list's tier and ID from the
// jumps to its chain. It guarantees that a rule is attributed only from a
// comment that parsed completely; the backends then check that the parsed
// reference renders back to the very comment read.
package rulecount
