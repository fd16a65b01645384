package netns_test

import (
	"fmt"
	"net"

	"github.com/onecast/onecast/netio/netns"
)

// Four hosts on a bridge, each in its own namespace; a UDP socket opened
// inside host 2. (Needs root; compiled, not run, by go test.)
func ExampleNew() {
	topo, err := netns.New(netns.Config{Nodes: 4})
	if err != nil {
		panic(err)
	}
	defer topo.Close() // removes the namespaces and every interface in them

	var conn *net.UDPConn
	err = topo.Do(2, func() error {
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: topo.Nodes[2].Addr.AsSlice(), Port: 7700})
		return err
	})
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	fmt.Println(topo.Nodes[2].Addr, topo.Nodes[2].MAC)
}
