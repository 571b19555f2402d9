// Package ttlafterfinished is quartet's TTL-after-finished controller: it
// deletes a finished Job ttlSecondsAfterFinished after it finished, and with
// it, through the garbage collector, the Job's pods.
package ttlafterfinished
