package kv

import (
	"fmt"
	"syscall"
)

// rusage returns the process's user and system CPU time as memcached
// prints them (seconds.microseconds).
func rusage() (user, sys string, ok bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return "", "", false
	}
	return fmt.Sprintf("%d.%06d", ru.Utime.Sec, ru.Utime.Usec), fmt.Sprintf("%d.%06d", ru.Stime.Sec, ru.Stime.Usec), true
}
