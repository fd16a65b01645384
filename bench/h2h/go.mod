module github.com/onecast/onecast/bench/h2h

go 1.26.8

require (
	github.com/HdrHistogram/hdrhistogram-go v1.4.0
	github.com/hyperledger-labs/SmartBFT v1.0.1
	github.com/lni/goutils v1.4.0
	github.com/onecast/onecast v0.0.0
	github.com/stretchr/testify v1.12.1
	go.etcd.io/raft/v3 v3.6.0
	google.golang.org/protobuf v1.36.11
)

require (
	github.com/cloudflare/circl v1.6.5 // indirect
	github.com/gogo/protobuf v1.3.2 // indirect
	github.com/golang/protobuf v1.5.4 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sync v0.20.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

replace github.com/onecast/onecast => ../..
