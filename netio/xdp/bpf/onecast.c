// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// onecast's XDP program: steer onecast datagrams to the AF_XDP socket of the
// receive queue, pass everything else to the kernel stack, and cut payloads
// the node already holds before they cost anything.
//
// Frame layout handled here (no VLAN, no IP options):
//
//   Ethernet(14) | IPv4(20) | UDP(8) | link header (link_header_size) |
//   onecast header(72) | body(BodyLen) | authenticator(AuthLen) | payload
//
// The onecast header's digest names the payload. When it is in the `held`
// map (kept in step with the PayloadStore by user space):
//   - a first frame (HasPayload, not Fragment) loses its payload bytes: the
//     frame is shortened with bpf_xdp_adjust_tail, HasPayload is cleared and
//     Stripped set, IPv4 total length and checksum and UDP length are fixed
//     (UDP checksum set to 0, which IPv4 allows). Header, body and
//     authenticator are kept, so the vote it carries still counts;
//   - a continuation fragment (Fragment) loses its payload bytes the same
//     way and keeps only its header. It is cut, not dropped: the reliable
//     link numbers every frame, and a dropped one would be a hole its peer
//     retransmits into until the digest leaves the map; the cut frame is
//     acknowledged and consumed (netio/link skips the continuations of a
//     payload stripped from its first frame).
// Both are counted, per CPU, in `counters`.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

// Set by the loader before the program is loaded (bpf2go: RewriteConstants /
// spec.Variables). The UDP port is in host byte order.
volatile const __u16 onecast_port = 0;
volatile const __u32 link_header_size = 0;

#define ONECAST_HEADER_SIZE 72
#define ONECAST_MAGIC_LO 0x6F // Magic 0x636F, little-endian
#define ONECAST_MAGIC_HI 0x63
#define ONECAST_VERSION 1
#define OFF_FLAGS 5
#define OFF_BODYLEN 6
#define OFF_DIGEST 32
#define OFF_AUTHLEN 64
#define FLAG_HAS_PAYLOAD 1
#define FLAG_FRAGMENT 2
#define FLAG_STRIPPED 4
#define MAX_LINK_HEADER 256

struct digest {
	__u8 b[32];
};

// held: the digests whose payloads this node holds. Value unused.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct digest);
	__type(value, __u8);
} held SEC(".maps");

// xsks: receive queue index -> AF_XDP socket.
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct counters {
	__u64 redirected;       // onecast frames handed to the socket
	__u64 passed;           // frames passed to the kernel stack
	__u64 stripped_frames;  // first frames whose payload was cut
	__u64 stripped_bytes;   // payload bytes cut from them
	__u64 stripped_frags;      // continuation fragments of held payloads cut
	__u64 stripped_frag_bytes; // payload bytes cut from them
	__u64 malformed;        // frames with a partial onecast header
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counters);
} stats SEC(".maps");

static __always_inline struct counters *counters(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&stats, &zero);
}

static __always_inline __u16 ip_checksum(struct iphdr *ip)
{
	__u32 sum = 0;
	__u16 *p = (__u16 *)ip;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += p[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static __always_inline int redirect(struct xdp_md *ctx, struct counters *c)
{
	if (c)
		c->redirected++;
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

SEC("xdp")
int onecast_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct counters *c = counters();

	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		goto pass;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		goto pass;
	if (ip->frag_off & bpf_htons(0x3fff)) // IP fragments go to the kernel
		goto pass;
	struct udphdr *udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > data_end || udp->dest != bpf_htons(onecast_port))
		goto pass;

	__u32 lhs = link_header_size;
	if (lhs > MAX_LINK_HEADER)
		return redirect(ctx, c);
	__u8 *hdr = (__u8 *)(udp + 1) + lhs;
	if ((void *)(hdr + ONECAST_HEADER_SIZE) > data_end) {
		// A bare link header is an ack; anything between is too short
		// for a onecast header: user space rejects and counts it.
		if ((void *)hdr < data_end && c)
			c->malformed++;
		return redirect(ctx, c);
	}
	if (hdr[0] != ONECAST_MAGIC_LO || hdr[1] != ONECAST_MAGIC_HI || hdr[2] != ONECAST_VERSION)
		return redirect(ctx, c);

	__u8 flags = hdr[OFF_FLAGS];
	if (!(flags & FLAG_HAS_PAYLOAD) || (flags & FLAG_STRIPPED))
		return redirect(ctx, c);

	struct digest key;
	__builtin_memcpy(&key, hdr + OFF_DIGEST, sizeof(key));
	if (!bpf_map_lookup_elem(&held, &key))
		return redirect(ctx, c);

	__u32 body = hdr[OFF_BODYLEN] | ((__u32)hdr[OFF_BODYLEN + 1] << 8);
	__u32 auth = hdr[OFF_AUTHLEN] | ((__u32)hdr[OFF_AUTHLEN + 1] << 8);
	__u32 frame_len = (__u32)(data_end - data);
	__u32 keep = sizeof(*eth) + sizeof(*ip) + sizeof(*udp) + lhs + ONECAST_HEADER_SIZE;

	int frag = flags & FLAG_FRAGMENT;
	if (!frag) // a continuation has no body or authenticator
		keep += body + auth;
	if (frame_len <= keep) // nothing to cut, or lengths past the end:
		return redirect(ctx, c); // user space decides
	__u32 cut = frame_len - keep;
	__u16 l4 = (__u16)(keep - sizeof(*eth) - sizeof(*ip));

	// Rewrite before shrinking: adjust_tail invalidates packet pointers.
	hdr[OFF_FLAGS] = (flags & ~FLAG_HAS_PAYLOAD) | FLAG_STRIPPED;
	ip->tot_len = bpf_htons(l4 + sizeof(*ip));
	ip->check = 0;
	ip->check = ip_checksum(ip);
	udp->len = bpf_htons(l4);
	udp->check = 0;

	if (bpf_xdp_adjust_tail(ctx, -(int)cut))
		return XDP_DROP; // header already rewritten: do not let it through
	if (c && frag) {
		c->stripped_frags++;
		c->stripped_frag_bytes += cut;
	} else if (c) {
		c->stripped_frames++;
		c->stripped_bytes += cut;
	}
	return redirect(ctx, c);

pass:
	if (c)
		c->passed++;
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual BSD/GPL";
