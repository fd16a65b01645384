package xdp

// The XDP program is C (bpf/onecast.c) compiled by bpf2go; the generated
// onecast_bpfel.go and onecast_bpfel.o are committed, so building onecast
// needs no clang. Regenerate (needs clang and libbpf-dev) with:
//
//	go generate ./netio/xdp

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel -go-package xdp onecast bpf/onecast.c -- -I/usr/include/x86_64-linux-gnu -O2 -Wall
