/* Predict's threads, kept alive between calls.
 *
 * fbp_run_threads starts its threads for one call. Linux places a new
 * thread by load averages that lag by tens of milliseconds: right after
 * another library's pool had run on the other core (onnxruntime's, in
 * bench/predict.py), predict's second thread, new at each call, often
 * shared its caller's core, and a 2-thread predict of 784-128-10 ran at one
 * thread's speed for many calls. A worker kept here stays on the core it
 * last ran on and is woken per call.
 *
 * fbp_pool_run(n, task, job) runs task(job, i) for i = 0..n-1 as
 * fbp_run_threads does (i = 0 on the caller): worker i of a pool runs index
 * i. A few pools serve callers at once (several Python threads); a caller
 * that finds every pool busy starts threads for its call instead.
 *
 * Between calls a worker spins for a short while (POOL_SPINS pauses, tens
 * of microseconds: a caller predicting in a loop finds it awake), then
 * sleeps on a futex, using no CPU. The caller waits for its workers the
 * same way. After fork the child forgets the parent's pools (its workers do
 * not exist there) and starts new workers when it predicts. At exit the
 * sleeping workers end with the process; they hold no Python state.
 *
 * Linux only (futexes); elsewhere fbp_pool_run is fbp_run_threads.
 */
#ifndef FASTBP_POOL_H
#define FASTBP_POOL_H

#include "fastbp_threads.h"

#if FBP_HAVE_THREADS && defined(__linux__)
#define FBP_HAVE_POOL 1
#include <linux/futex.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#if defined(__SSE2__) || defined(__x86_64__)
#include <xmmintrin.h>
#endif

#define FBP_POOLS 4
/* pauses a worker spins for the next call before sleeping (~40-100 us),
 * and the caller for its workers: on a busy machine a caller spinning for
 * long holds a core a descheduled worker of its own may be waiting for */
#ifndef FBP_POOL_SPINS
#define FBP_POOL_SPINS 1000
#endif
#ifndef FBP_POOL_CALLER_SPINS
#define FBP_POOL_CALLER_SPINS 100
#endif

typedef struct {
    int word;      /* bumped by the caller to start the worker's share */
    int sleeping;  /* the worker waits on word in the kernel */
    char pad[56];  /* one cache line per worker */
} fbp_pool_slot;

typedef struct {
    pthread_mutex_t lock;  /* held by the pool's caller for its call */
    int n_workers;         /* started, alive: indices 1..n_workers */
    fbp_task task;
    void *job;
    unsigned int csr;      /* the caller's MXCSR (denormals mode) */
    int pending;           /* workers of this call not yet done */
    int caller_sleeping;
    fbp_pool_slot slots[FBP_MAX_THREADS];
} fbp_pool;

typedef struct {
    fbp_pool *pool;
    int index;
    int seen;  /* slots[index].word when the worker started */
} fbp_pool_start;

static fbp_pool fbp_pools[FBP_POOLS];
static pthread_once_t fbp_pools_once = PTHREAD_ONCE_INIT;

static inline void fbp_futex_wait(int *word, int value)
{
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
}

static inline void fbp_futex_wake(int *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Wait while *word == value: spin, then sleep with *sleeping set. The one
 * who changes *word reads *sleeping after (both sequentially consistent), so
 * either it sees the flag and wakes the sleeper, or the sleeper sees the
 * change; the futex rechecks *word on entry. */
static inline void fbp_pool_wait(int *word, int value, int *sleeping, int max_spins)
{
    int spins;
    for (spins = 0; spins < max_spins; spins++) {
        if (__atomic_load_n(word, __ATOMIC_ACQUIRE) != value)
            return;
        fbp_pause();
    }
    __atomic_store_n(sleeping, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(word, __ATOMIC_SEQ_CST) == value)
        fbp_futex_wait(word, value);
    __atomic_store_n(sleeping, 0, __ATOMIC_RELAXED);
}

static void fbp_pools_reset(void)
{
    int p;
    memset(fbp_pools, 0, sizeof fbp_pools);
    for (p = 0; p < FBP_POOLS; p++)
        pthread_mutex_init(&fbp_pools[p].lock, NULL);
}

/* The child of a fork has none of the parent's workers, and a pool's lock
 * may have been held by a parent thread the child does not have. */
static void fbp_pools_after_fork(void)
{
    fbp_pools_reset();
}

static void fbp_pools_init(void)
{
    fbp_pools_reset();
    pthread_atfork(NULL, NULL, fbp_pools_after_fork);
}

static void *fbp_pool_worker(void *p)
{
    fbp_pool_start start = *(fbp_pool_start *)p;
    fbp_pool *pool = start.pool;
    fbp_pool_slot *slot = &pool->slots[start.index];
    int seen = start.seen;
    free(p);
    for (;;) {
        fbp_pool_wait(&slot->word, seen, &slot->sleeping, FBP_POOL_SPINS);
        seen = __atomic_load_n(&slot->word, __ATOMIC_ACQUIRE);
#if defined(__SSE2__) || defined(__x86_64__)
        _mm_setcsr(pool->csr);
#endif
        pool->task(pool->job, start.index);
        if (__atomic_sub_fetch(&pool->pending, 1, __ATOMIC_SEQ_CST) == 0
                && __atomic_load_n(&pool->caller_sleeping, __ATOMIC_SEQ_CST))
            fbp_futex_wake(&pool->pending);
    }
    return NULL;
}

/* Start workers until the pool has n - 1; whether it has. */
static int fbp_pool_grow(fbp_pool *pool, int n)
{
    pthread_attr_t attr;
    pthread_t thread;
    sigset_t all, saved;
    int ok = 1;
    if (pool->n_workers >= n - 1)
        return 1;
    if (pthread_attr_init(&attr) != 0)
        return 0;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* workers outlive the call: signals (Ctrl-C) go to Python's threads */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    while (pool->n_workers < n - 1) {
        int index = pool->n_workers + 1;
        fbp_pool_start *start = (fbp_pool_start *)malloc(sizeof *start);
        if (start == NULL) {
            ok = 0;
            break;
        }
        start->pool = pool;
        start->index = index;
        start->seen = __atomic_load_n(&pool->slots[index].word, __ATOMIC_RELAXED);
        if (pthread_create(&thread, &attr, fbp_pool_worker, start) != 0) {
            free(start);
            ok = 0;
            break;
        }
        pool->n_workers = index;
    }
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    pthread_attr_destroy(&attr);
    return ok;
}

/* Run task(job, i) for i = 0..n-1 at once, i = 0 on the calling thread, and
 * wait for all; as fbp_run_threads (0, or -1 with nothing run). */
static inline int fbp_pool_run(int n, fbp_task task, void *job)
{
    fbp_pool *pool = NULL;
    int p, i;
    if (n < 1 || n > FBP_MAX_THREADS)
        return -1;
    if (n == 1) {
        task(job, 0);
        return 0;
    }
    pthread_once(&fbp_pools_once, fbp_pools_init);
    for (p = 0; p < FBP_POOLS && pool == NULL; p++)
        if (pthread_mutex_trylock(&fbp_pools[p].lock) == 0)
            pool = &fbp_pools[p];
    if (pool == NULL)  /* every pool busy: threads of the call's own */
        return fbp_run_threads(n, task, job);
    if (!fbp_pool_grow(pool, n)) {
        pthread_mutex_unlock(&pool->lock);
        return fbp_run_threads(n, task, job);
    }
    pool->task = task;
    pool->job = job;
#if defined(__SSE2__) || defined(__x86_64__)
    pool->csr = _mm_getcsr();
#endif
    __atomic_store_n(&pool->pending, n - 1, __ATOMIC_SEQ_CST);
    for (i = 1; i < n; i++) {
        fbp_pool_slot *slot = &pool->slots[i];
        __atomic_add_fetch(&slot->word, 1, __ATOMIC_SEQ_CST);  /* publishes task, job */
        if (__atomic_load_n(&slot->sleeping, __ATOMIC_SEQ_CST))
            fbp_futex_wake(&slot->word);
    }
    task(job, 0);
    for (;;) {
        int left = __atomic_load_n(&pool->pending, __ATOMIC_SEQ_CST);
        if (left == 0)
            break;
        fbp_pool_wait(&pool->pending, left, &pool->caller_sleeping, FBP_POOL_CALLER_SPINS);
    }
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

#else
#define FBP_HAVE_POOL 0

static inline int fbp_pool_run(int n, fbp_task task, void *job)
{
    return fbp_run_threads(n, task, job);
}
#endif

#endif
