module github.com/onecast/onecast/bench/h2h

go 1.26.8

require github.com/onecast/onecast v0.0.0

require (
	github.com/gogo/protobuf v1.3.2 // indirect
	github.com/golang/protobuf v1.5.4 // indirect
	github.com/hyperledger-labs/SmartBFT v1.0.1 // indirect
	go.etcd.io/raft/v3 v3.6.0 // indirect
	google.golang.org/protobuf v1.36.11 // indirect
)

replace github.com/onecast/onecast => ../..
