// Package bufpool holds payload bytes once and passes them by reference.
//
// A [Buf] is a handle on a reference-counted buffer: one fixed-size frame
// carved from a [Pool]'s region, a chain of such frames for a payload larger
// than a frame, or a heap slice wrapped by [Wrap]. A handle also carries a
// window (offset and length) over the buffer, so that a frame holding a
// header and a payload can be handed on as just the payload, and one frame
// holding a batch can be handed on as several payloads, without a copy.
//
// # Ownership
//
// Every handle that is held counts one reference. Retain adds one and returns
// the handle; Release drops one. When the last reference goes, every frame of
// the chain returns to its pool (for an AF_XDP pool: becomes available to the
// fill ring again). Functions that take a Buf say in their doc comment whether
// they take the caller's reference ("takes b") or borrow it ("borrows b").
// A borrowed Buf is valid only until the call returns.
//
// Slice returns a narrower view that shares the caller's reference: it costs
// nothing, and it must be Retained if it is kept past the life of the
// reference it came from.
//
// # Why handles carry a generation
//
// Frame descriptors are recycled, so a stale pointer would look alive again
// once its frame is reused. Each handle records the generation of the
// descriptor it was made for and each release bumps it, so a use after
// release is detected even after the frame has been handed out again.
// Retain and Release always check it (a double free would otherwise corrupt
// the free list); in checked mode every read is checked too, released frames
// are poisoned, and the pool records where each outstanding buffer was taken
// so that [Pool.CheckLeaks] can name the leak. Violations panic with a
// *[Violation]: they are programming errors, like unlocking an unlocked mutex.
//
// # Copies
//
// Reading a buffer is free when its window lies in one segment. Flattening a
// chain ([Buf.Bytes] on a multi-frame window) or copying out ([Buf.CopyTo])
// is counted in the pool's [Stats], so that "user-space payload copies" is a
// measured figure rather than a claim.
package bufpool
