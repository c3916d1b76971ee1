package posts_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"titanium/blog-service/posts"
	"titanium/blog-service/store"
	"titanium/platform/sqlitedb"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "posts.db"), sqlitedb.SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// The renderings the cache keeps: JSON of a post, and of a page as ids,
// titles and the next id.
func encodePost(p *posts.Post) ([]byte, error) { return json.Marshal(p) }

type pageView struct {
	Titles []string
	Next   int64
}

func encodePage(items []posts.Post, next int64) ([]byte, error) {
	v := pageView{Next: next, Titles: []string{}}
	for _, p := range items {
		v.Titles = append(v.Titles, strconv.FormatInt(p.ID, 10)+":"+p.Title)
	}
	return json.Marshal(v)
}

func getTitle(t *testing.T, s *posts.Service, id int64) string {
	t.Helper()
	body, err := s.GetEncoded(context.Background(), id, encodePost)
	if err != nil {
		t.Fatalf("GetEncoded(%d): %v", id, err)
	}
	var p posts.Post
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	return p.Title
}

func listPage(t *testing.T, s *posts.Service, before int64, limit int) string {
	t.Helper()
	body, err := s.ListEncoded(context.Background(), before, limit, encodePage)
	if err != nil {
		t.Fatalf("ListEncoded: %v", err)
	}
	return string(body)
}

// freshPage is the page as the store has it now, past any cache.
func freshPage(t *testing.T, st *store.Store, before int64, limit int) string {
	t.Helper()
	items, next, err := posts.NewService(st, nil).List(context.Background(), before, limit)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := encodePage(items, next)
	return string(b)
}

// TestCacheCoherentUnderConcurrentWrites: readers hammer posts and pages
// while writers update, create and delete through the Service. Every write
// is visible to a read that starts after it returns (the writer checks its
// own write at once), and when everything stops, every cached answer is
// what the store holds.
func TestCacheCoherentUnderConcurrentWrites(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	var ids []int64
	for i := 0; i < 30; i++ {
		p, err := st.Create(ctx, "alice", fmt.Sprintf("seed %d", i), "c")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	cache := posts.NewCache(1000, 1<<20)
	s := posts.NewService(st, cache)
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for r := 0; r < 4; r++ {
		readers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := ids[(i*7+r)%len(ids)]
				_, _ = s.GetEncoded(ctx, id, encodePost) // a deleted post is an error: fine
				_, _ = s.ListEncoded(ctx, 0, 10, encodePage)
				_, _ = s.ListEncoded(ctx, id, 5, encodePage)
			}
		})
	}
	var writers sync.WaitGroup
	for w := 0; w < 2; w++ {
		writers.Go(func() {
			for n := 0; n < 40; n++ {
				id := ids[(n*2+w)%len(ids)] // each writer its own posts
				title := fmt.Sprintf("w%d-%d", w, n)
				if _, err := s.Update(ctx, id, "alice", &title, nil); err != nil {
					t.Errorf("update %d: %v", id, err)
					return
				}
				if got := getTitle(t, s, id); got != title {
					t.Errorf("post %d right after its update to %q: got %q", id, title, got)
				}
				c := "c"
				created, err := s.Create(ctx, "alice", &title, &c)
				if err != nil {
					t.Errorf("create: %v", err)
					return
				}
				if page := listPage(t, s, 0, 10); !strings.Contains(page, strconv.FormatInt(created.ID, 10)+":") {
					t.Errorf("the first page right after creating %d lacks it: %s", created.ID, page)
				}
				if err := s.Delete(ctx, created.ID, "alice"); err != nil {
					t.Errorf("delete %d: %v", created.ID, err)
					return
				}
				if _, err := s.GetEncoded(ctx, created.ID, encodePost); err == nil {
					t.Errorf("post %d still served after its delete", created.ID)
				}
			}
		})
	}
	writers.Wait()
	close(stop)
	readers.Wait()

	// Quiet now: whatever the cache serves is what the store holds.
	for _, id := range ids {
		p, err := st.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got := getTitle(t, s, id); got != p.Title {
			t.Errorf("post %d: cache serves %q, store has %q", id, got, p.Title)
		}
		if got, want := listPage(t, s, id, 5), freshPage(t, st, id, 5); got != want {
			t.Errorf("page before %d: cache serves %s, store has %s", id, got, want)
		}
	}
	if got, want := listPage(t, s, 0, 10), freshPage(t, st, 0, 10); got != want {
		t.Errorf("first page: cache serves %s, store has %s", got, want)
	}
	if n, _ := cache.Len(); n == 0 {
		t.Error("nothing was cached: the test did not exercise the cache")
	}
}

// pausedStore is the real store whose next Get, once armed, waits after
// reading until released: a read that began before a write and ends after
// it.
type pausedStore struct {
	*store.Store
	armed   bool
	read    chan struct{} // closed when the paused Get has read
	release chan struct{} // closed to let it return
}

func (p *pausedStore) Get(ctx context.Context, id int64) (posts.Post, error) {
	post, err := p.Store.Get(ctx, id)
	if p.armed {
		p.armed = false
		close(p.read)
		<-p.release
	}
	return post, err
}

// TestReadBeforeWriteNotCachedAfterIt: a read that fetched the old post,
// then lost the race to an update and its invalidation, must not leave the
// old post in the cache.
func TestReadBeforeWriteNotCachedAfterIt(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	p, err := st.Create(ctx, "alice", "old", "c")
	if err != nil {
		t.Fatal(err)
	}
	ps := &pausedStore{Store: st, armed: true, read: make(chan struct{}), release: make(chan struct{})}
	s := posts.NewService(ps, posts.NewCache(100, 1<<20))
	done := make(chan string)
	go func() {
		body, err := s.GetEncoded(ctx, p.ID, encodePost)
		if err != nil {
			t.Error(err)
		}
		done <- string(body)
	}()
	<-ps.read // the reader holds the old post
	title := "new"
	if _, err := s.Update(ctx, p.ID, "alice", &title, nil); err != nil {
		t.Fatal(err)
	}
	close(ps.release)
	if old := <-done; !strings.Contains(old, `"title":"old"`) {
		t.Fatalf("the paused read returned %s, want the old post", old)
	}
	if got := getTitle(t, s, p.ID); got != "new" {
		t.Errorf("after the update, the cache serves %q: the paused read put stale data back", got)
	}
}

// TestNoCacheReadsTheStore: with the cache disabled every read goes to the
// store, so even a write that bypasses the Service shows at once.
func TestNoCacheReadsTheStore(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	p, err := st.Create(ctx, "alice", "one", "c")
	if err != nil {
		t.Fatal(err)
	}
	s := posts.NewService(st, posts.NewCache(0, 1<<20))
	if got := getTitle(t, s, p.ID); got != "one" {
		t.Fatalf("got %q", got)
	}
	listPage(t, s, 0, 10)
	two := "two"
	if _, err := st.Update(ctx, p.ID, "alice", posts.Patch{Title: &two}); err != nil {
		t.Fatal(err)
	}
	if got := getTitle(t, s, p.ID); got != "two" {
		t.Errorf("without a cache, a read after a store write: got %q, want two", got)
	}
	if got, want := listPage(t, s, 0, 10), freshPage(t, st, 0, 10); got != want {
		t.Errorf("without a cache, the page: got %s, want %s", got, want)
	}
}
