package config

import (
	"errors"
	"fmt"
	"net"
)

// Transport kinds a node entry may name.
const (
	// TransportUDP is kernel UDP sockets (the default).
	TransportUDP = "udp"
	// TransportXDP is an AF_XDP socket on one receive queue of an
	// interface, with onecast's XDP program attached to it.
	TransportXDP = "xdp"
)

// Transport is a node's optional transport section. Without it a node runs
// over kernel UDP. Example:
//
//	transport:
//	  kind: xdp
//	  iface: eth1
//	  queue: 0
//	  attach: auto      # native, generic or auto (native, else generic)
//	  bind: auto        # zerocopy, copy or auto (zero-copy, else copy)
//	  frame_size: 2048  # UMEM frame: 2048 or 4096
//	  frames: 32768     # UMEM frames
//	  fallback: udp     # when AF_XDP cannot be used: udp, or none (an error)
//
// MAC may be given for any kind: it is the hardware address the node's
// peers that run AF_XDP put in the frames they send to it (default: the
// address the kernel's neighbour table resolves for the node's IP).
type Transport struct {
	// Kind is "udp" (default) or "xdp".
	Kind string `yaml:"kind,omitempty"`
	// Iface is the interface the AF_XDP socket is bound to (xdp).
	Iface string `yaml:"iface,omitempty"`
	// Queue is the interface's receive queue (xdp; default 0).
	Queue int `yaml:"queue,omitempty"`
	// Attach is the XDP attach mode: "auto" (default), "native", "generic".
	Attach string `yaml:"attach,omitempty"`
	// Bind is the AF_XDP binding: "auto" (default), "zerocopy", "copy".
	Bind string `yaml:"bind,omitempty"`
	// FrameSize is the UMEM frame size: 2048 (default) or 4096.
	FrameSize int `yaml:"frame_size,omitempty"`
	// Frames is the number of UMEM frames (default 32768).
	Frames int `yaml:"frames,omitempty"`
	// Fallback says what a node does when AF_XDP cannot be used: "none"
	// (default: it refuses to start, naming the cause) or "udp" (it runs
	// over kernel UDP and says so).
	Fallback string `yaml:"fallback,omitempty"`
	// MAC is the hardware address peers running AF_XDP send this node's
	// frames to. Optional.
	MAC string `yaml:"mac,omitempty"`
}

// KindOrDefault returns Kind, or "udp" when it is empty (also for a nil
// section).
func (t *Transport) KindOrDefault() string {
	if t == nil || t.Kind == "" {
		return TransportUDP
	}
	return t.Kind
}

// Validate checks the section (a nil section is valid: UDP) and names the
// first field at fault.
func (t *Transport) Validate() error {
	if t == nil {
		return nil
	}
	if t.MAC != "" {
		if hw, err := net.ParseMAC(t.MAC); err != nil || len(hw) != 6 {
			return fmt.Errorf("mac: %q is not an Ethernet address", t.MAC)
		}
	}
	switch t.KindOrDefault() {
	case TransportUDP:
		if t.Iface != "" || t.Queue != 0 || t.Attach != "" || t.Bind != "" || t.FrameSize != 0 || t.Frames != 0 || t.Fallback != "" {
			return errors.New("kind: udp takes no AF_XDP settings (iface, queue, attach, bind, frame_size, frames, fallback)")
		}
		return nil
	case TransportXDP:
	default:
		return fmt.Errorf("kind: %q (want udp or xdp)", t.Kind)
	}
	switch {
	case t.Iface == "":
		return errors.New("iface: missing (the interface AF_XDP binds to)")
	case len(t.Iface) > 15:
		return fmt.Errorf("iface: %q is longer than an interface name can be (15)", t.Iface)
	case t.Queue < 0 || t.Queue >= 64:
		return fmt.Errorf("queue: %d outside [0, 64)", t.Queue)
	case t.FrameSize != 0 && t.FrameSize != 2048 && t.FrameSize != 4096:
		return fmt.Errorf("frame_size: %d (want 2048 or 4096)", t.FrameSize)
	case t.Frames < 0 || t.Frames > 1<<22:
		return fmt.Errorf("frames: %d outside [0, %d]", t.Frames, 1<<22)
	}
	switch t.Attach {
	case "", "auto", "native", "generic":
	default:
		return fmt.Errorf("attach: %q (want auto, native or generic)", t.Attach)
	}
	switch t.Bind {
	case "", "auto", "zerocopy", "copy":
	default:
		return fmt.Errorf("bind: %q (want auto, zerocopy or copy)", t.Bind)
	}
	switch t.Fallback {
	case "", "none", TransportUDP:
	default:
		return fmt.Errorf("fallback: %q (want none or udp)", t.Fallback)
	}
	return nil
}
