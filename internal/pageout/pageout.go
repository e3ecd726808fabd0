// Package pageout gives back the executable's pages that only start-up used.
//
// Go initialises every linked package before main, and the runtime walks
// type and function metadata while doing so: a binary that links the etcd
// client, gRPC, protobuf and a JSON Schema compiler touches most of its
// read-only segments once (with the kernel's 64 KiB fault-around, almost
// all of them), and they then stay mapped, counted in RSS, although serving
// needs a fraction. Release tells the kernel, once after start-up, that the
// executable's read-only mappings are not needed: MADV_COLD moves their
// pages to the inactive list (reclaimed first, outside the working set that
// Kubernetes reports), then MADV_DONTNEED drops them from this process's page
// tables. Nothing is lost: the pages are clean copies of the file; the ones
// still in use fault back in from the page cache (a minor fault) on next
// use, the rest stay out.
//
// Only read-only mappings of the executable with no private (anonymous)
// pages are touched: writable data, and relocated read-only data of a PIE
// build, are left alone. On other systems Release does nothing.
package pageout
