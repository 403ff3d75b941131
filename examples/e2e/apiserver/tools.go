//go:build tools

// Package apiserver only exists to pin k8s.io/kubernetes/cmd/kube-apiserver in
// this module's go.mod and go.sum; build the binary with
//
//	go build -o BIN k8s.io/kubernetes/cmd/kube-apiserver
//
// (see ../build-apiserver.sh).
package apiserver

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
