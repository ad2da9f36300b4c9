/* A few worker threads for one kernel call, and a spinning barrier.
 *
 * Minibatch training splits each batch over threads of its own rather than
 * over the BLAS's thread pool: the forward pass and the deltas of a row
 * depend only on that row, so each thread runs them on its share of the rows
 * with no synchronisation, and only the weight update (a sum over all rows)
 * needs a barrier. The elementwise work (activations, derivatives, bias sums)
 * is then split too, where the BLAS pool would leave it to one thread.
 *
 * POSIX threads only; elsewhere fbp_run_threads reports -1 and the caller
 * trains on one thread.
 */
#ifndef FASTBP_THREADS_H
#define FASTBP_THREADS_H

#include <stddef.h>

#define FBP_MAX_THREADS 64

#if (defined(__unix__) || defined(__APPLE__)) && (defined(__GNUC__) || defined(__clang__))
#define FBP_HAVE_THREADS 1
#include <pthread.h>
#include <sched.h>
#else
#define FBP_HAVE_THREADS 0
#endif

typedef void (*fbp_task)(void *job, int index);

typedef struct {
    int count;  /* threads arrived in this phase */
    int phase;  /* bumped by the last one to arrive */
    int n;
} fbp_barrier;

static inline void fbp_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Spin briefly (the wait is usually microseconds, both threads busy), then
 * yield the core, so an oversubscribed machine still makes progress. */
static inline void fbp_wait_while_equal(const int *word, int value)
{
#if FBP_HAVE_THREADS
    int spins = 0;
    while (__atomic_load_n(word, __ATOMIC_ACQUIRE) == value) {
        if (++spins < 20000)
            fbp_pause();
        else
            sched_yield();
    }
#else
    (void)word;
    (void)value;
#endif
}

/* The value of *counter before adding step: a share of work to claim. */
static inline ptrdiff_t fbp_claim(ptrdiff_t *counter, ptrdiff_t step)
{
    return __atomic_fetch_add(counter, step, __ATOMIC_RELAXED);
}

/* Set *flag to 1; several threads may do so at once. */
static inline void fbp_raise_flag(int *flag)
{
    __atomic_store_n(flag, 1, __ATOMIC_RELAXED);
}

static inline void fbp_barrier_init(fbp_barrier *b, int n)
{
    b->count = 0;
    b->phase = 0;
    b->n = n;
}

static inline void fbp_barrier_wait(fbp_barrier *b)
{
#if FBP_HAVE_THREADS
    int phase = __atomic_load_n(&b->phase, __ATOMIC_ACQUIRE);
    if (__atomic_add_fetch(&b->count, 1, __ATOMIC_ACQ_REL) == b->n) {
        /* reset before the release, so the next phase starts from 0 */
        __atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&b->phase, phase + 1, __ATOMIC_RELEASE);
        return;
    }
    fbp_wait_while_equal(&b->phase, phase);
#else
    (void)b;
#endif
}

#if FBP_HAVE_THREADS
typedef struct {
    fbp_task task;
    void *job;
    int index;
    const int *gate;  /* 0 wait, 1 run, 2 abort */
} fbp_thread_arg;

static void *fbp_thread_main(void *p)
{
    fbp_thread_arg *arg = (fbp_thread_arg *)p;
    fbp_wait_while_equal(arg->gate, 0);
    if (__atomic_load_n(arg->gate, __ATOMIC_ACQUIRE) == 1)
        arg->task(arg->job, arg->index);
    return NULL;
}
#endif

/* Run task(job, i) for i = 0..n-1 at once, i = 0 on the calling thread, and
 * wait for all. Returns 0, or -1 without running anything if the threads
 * could not be started (then the caller runs the work itself). */
static inline int fbp_run_threads(int n, fbp_task task, void *job)
{
#if FBP_HAVE_THREADS
    pthread_t threads[FBP_MAX_THREADS];
    fbp_thread_arg args[FBP_MAX_THREADS];
    int gate = 0, created = 0, i;
    if (n < 1 || n > FBP_MAX_THREADS)
        return -1;
    for (i = 1; i < n; i++) {
        args[i].task = task;
        args[i].job = job;
        args[i].index = i;
        args[i].gate = &gate;
        if (pthread_create(&threads[i], NULL, fbp_thread_main, &args[i]) != 0)
            break;
        created++;
    }
    /* every thread takes part in the barriers, so all of them or none run */
    __atomic_store_n(&gate, created == n - 1 ? 1 : 2, __ATOMIC_RELEASE);
    if (created == n - 1)
        task(job, 0);
    for (i = 1; i <= created; i++)
        pthread_join(threads[i], NULL);
    return created == n - 1 ? 0 : -1;
#else
    (void)n;
    (void)task;
    (void)job;
    return -1;
#endif
}

/* The CPU the calling thread runs on, or -1 where that is not known. */
static inline int fbp_current_cpu(void)
{
#if FBP_HAVE_THREADS && defined(__linux__) && defined(_GNU_SOURCE)
    return sched_getcpu();
#else
    return -1;
#endif
}

/* Move the calling thread off ``cpu`` when it runs there, to another CPU
 * its affinity mask allows, and keep the mask. A thread started for one
 * call may start on its creator's core: Linux places a new thread by load
 * averages that lag by tens of milliseconds, and right after another
 * library's pool ran on the other core (onnxruntime's, in
 * bench/predict.py), predict's second thread shared the first one's core
 * for several calls (784-128-10 on 2 threads: one thread's time). */
static inline void fbp_leave_cpu(int cpu)
{
#if FBP_HAVE_THREADS && defined(__linux__) && defined(_GNU_SOURCE)
    cpu_set_t mask, others;
    if (cpu < 0 || sched_getcpu() != cpu
            || pthread_getaffinity_np(pthread_self(), sizeof mask, &mask) != 0)
        return;
    others = mask;
    CPU_CLR(cpu, &others);
    if (CPU_COUNT(&others) > 0
            && pthread_setaffinity_np(pthread_self(), sizeof others, &others) == 0)
        pthread_setaffinity_np(pthread_self(), sizeof mask, &mask);  /* moved: stays */
#else
    (void)cpu;
#endif
}

#endif
