package h1fast

import (
	"bufio"
	"log"
	"sync"
	"syscall"
	"time"
)

// canPark: idle connections park on this system (park.go).
const canPark = true

// poller is the epoll instance shared by every parked connection of the
// process, and the goroutine that waits on it. Registrations are
// level-triggered and one-shot, so bytes that arrived before a connection
// parked wake it at once, and each wake-up comes once.
type poller struct {
	once sync.Once
	fd   int
	err  error

	mu    sync.Mutex
	slots []*conn // parked connections by registration id
	free  []int32 // unused ids
}

var parked poller

func (p *poller) start() error {
	p.once.Do(func() {
		p.fd, p.err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if p.err == nil {
			go p.wait()
		}
	})
	return p.err
}

// add gives c an id.
func (p *poller) add(c *conn) int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		id := p.free[n-1]
		p.free = p.free[:n-1]
		p.slots[id] = c
		return id
	}
	p.slots = append(p.slots, c)
	return int32(len(p.slots) - 1)
}

// remove frees id.
func (p *poller) remove(id int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if id >= 0 && int(id) < len(p.slots) && p.slots[id] != nil {
		p.slots[id] = nil
		p.free = append(p.free, id)
	}
}

// wait hands each connection whose socket became readable to a new
// goroutine. It runs for the life of the process.
func (p *poller) wait() {
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(p.fd, events, -1)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			// Cannot happen with a valid epoll fd and buffer; parked
			// connections then still end at their deadlines.
			log.Printf("h1fast: epoll_wait: %v", err)
			return
		}
		for _, ev := range events[:n] {
			p.mu.Lock()
			var c *conn
			if id := ev.Fd; id >= 0 && int(id) < len(p.slots) {
				c = p.slots[id]
			}
			p.mu.Unlock()
			if c != nil && c.claim(parkClaimed) {
				go c.resume()
			}
		}
	}
}

// park gives back the connection's buffers and response state and leaves
// it to the poller; the calling goroutine then returns. It reports false
// if the socket could not be watched (then the caller waits as before).
// Called by loop's goroutine with nothing buffered and the read deadline
// at the wait's end.
func (c *conn) park(until time.Time) bool {
	if parked.start() != nil {
		return false
	}
	c.release()
	if !until.IsZero() {
		// Armed before the connection is published (parked.add, under the
		// poller's lock), so whoever claims it sees the timer.
		if c.ptimer == nil {
			c.ptimer = time.AfterFunc(time.Until(until), c.parkTimeout)
		} else {
			c.ptimer.Reset(time.Until(until))
		}
	}
	c.pid = parked.add(c)
	c.s.parked.Add(1)
	if f := c.s.OnPark; f != nil {
		f(1)
	}
	c.pstate.Store(parkWaiting)
	if !until.IsZero() && !time.Now().Before(until) {
		// The deadline passed while parking: its timer may have found the
		// connection not yet parked.
		c.parkTimeout()
		return true
	}
	var err error
	cerr := c.raw.Control(func(fd uintptr) {
		// Inside Control the descriptor cannot be closed and reused.
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: c.pid}
		err = syscall.EpollCtl(parked.fd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if cerr == nil && err == nil {
		return true
	}
	if !c.claim(parkNone) {
		return true // the timer or Shutdown claimed it and finishes it
	}
	// Not watched: wait with a normal read from now on.
	if c.ptimer != nil {
		c.ptimer.Stop()
	}
	parked.remove(c.pid)
	c.pid = -1
	c.raw = nil
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(connReader{c})
	return false
}

// unwatch ends c's registration, if any. Called by whoever claimed it.
func (c *conn) unwatch() {
	if c.pid < 0 {
		return
	}
	_ = c.raw.Control(func(fd uintptr) {
		_ = syscall.EpollCtl(parked.fd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	})
	parked.remove(c.pid)
	c.pid = -1
}
