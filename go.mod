module github.com/onecast/onecast

go 1.26.8

require (
	github.com/cloudflare/circl v1.6.5
	github.com/stretchr/testify v1.12.1
)

require (
	github.com/asavie/xdp v0.3.3 // indirect
	github.com/cilium/ebpf v0.20.0 // indirect
	github.com/lni/goutils v1.4.0 // indirect
	github.com/vishvananda/netlink v1.3.1 // indirect
	github.com/vishvananda/netns v0.0.5 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/crypto v0.54.0 // indirect
	golang.org/x/net v0.56.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
)
