// Package link is the reliable-link layer: it turns any netio.Conduit (kernel
// UDP sockets, an AF_XDP socket) into a netio.Transport that delivers every
// message exactly once, despite loss, reordering and duplication on the
// conduit.
package link
