/* Checks csrc/fastbp_sample_impl.h's unrolled per-sample epochs of a net of a
 * few units (fbp_sample_tiny) against the general loop bit for bit, and times
 * both, in C, without a pip build; built without target_clones (-U__linux__)
 * at a chosen -march, it checks the baseline's code too, which the tests
 * (on an AVX2 CPU) never run.
 *
 *   gcc -O3 -fno-math-errno -pthread -U__linux__ -march=x86-64 -Icsrc \
 *       tools/sample_tiny_harness.c -lm -o /tmp/tiny_d
 *   ... -DREAL=float -DSFX=_f -o /tmp/tiny_f      (float32)
 *   /tmp/tiny_d check        # 400 random cases over the 16 shapes: 0 differing
 *   /tmp/tiny_d time 2 2     # ns a row of 2-2-1, unrolled then general
 *
 * The check draws shapes n0-n1-1 (n0, n1 in 1..4), weights (some large, for
 * the sigmoid's saturated tails), rows, targets (some whose loss overflows),
 * rates (some that overflow the weights), with and without an order, and
 * compares fbp_sample_epochs and fbp_sample_epoch calls: weights, sums,
 * totals, status and epochs done.
 */
#include "sample_tiny_common.h"

#define EPOCHS GLUE(fbp_sample_epochs, SFX)
#define EPOCH GLUE(fbp_sample_epoch, SFX)

static int check(void) {
    int bad = 0, statuses[3] = {0, 0, 0};
    for (int trial = 0; trial < 400; trial++) {
        setup s;
        int n0 = 1 + trial % 4, n1 = 1 + (trial / 4) % 4;
        int rows = 1 + (int)(rnd() * 8), epochs = 1 + (int)(rnd() * 30);
        make(&s, n0, n1, rows);
        ptrdiff_t n = s.net.n_params;
        REAL p1[64], p2[64];
        double scale = trial % 3 == 0 ? 40 : 1;
        double lr = trial % 7 == 0 ? (sizeof(REAL) == 4 ? 1e39 : 1e300) : rnd();
        for (ptrdiff_t k = 0; k < n; k++) p1[k] = p2[k] = (REAL)((rnd() - 0.5) * 2 * scale);
        draw_rows(&s, trial, n0, rows, epochs);
        double d1[64] = {0}, d2[64] = {0}, q1[64] = {0}, q2[64] = {0};
        int st1, st2;
        fbp_sample_tiny_on = 1; s.net.params = p1;
        ptrdiff_t e1 = EPOCHS(&s.net, &s.data, lr, epochs, rows, d1, q1, &st1);
        fbp_sample_tiny_on = 0; s.net.params = p2;
        ptrdiff_t e2 = EPOCHS(&s.net, &s.data, lr, epochs, rows, d2, q2, &st2);
        statuses[st1]++;
        if (e1 != e2 || st1 != st2 || memcmp(p1, p2, n * sizeof(REAL)) || memcmp(d1, d2, sizeof d1)
            || memcmp(q1, q2, sizeof q1)) {
            if (bad++ < 5) printf("epochs differ: trial %d, %d-%d-1\n", trial, n0, n1);
        }
        /* one epoch a call */
        fbp_totals t1, t2;
        for (ptrdiff_t k = 0; k < n; k++) p1[k] = p2[k] = (REAL)((rnd() - 0.5) * 2 * scale);
        for (int e = 0; e < 3; e++) {
            fbp_sample_tiny_on = 1; s.net.params = p1;
            int a = EPOCH(&s.net, &s.data, lr, 0, rows, &t1);
            fbp_sample_tiny_on = 0; s.net.params = p2;
            int b = EPOCH(&s.net, &s.data, lr, 0, rows, &t2);
            if (a != b || memcmp(p1, p2, n * sizeof(REAL)) || memcmp(&t1.loss_sum, &t2.loss_sum, 8)
                || t1.rows_done != t2.rows_done || t1.penalty_sum != t2.penalty_sum) {
                if (bad++ < 5) printf("an epoch differs: trial %d, %d-%d-1\n", trial, n0, n1);
            }
            if (a) break;
        }
    }
    printf("%s: 400 cases, %d differing; status 0/1/2: %d/%d/%d; unrolled calls %td\n",
           real_name(), bad, statuses[0], statuses[1], statuses[2],
           fbp_sample_tiny_runs);
    return bad != 0;
}

static void time_shape(int n0, int n1) {
    enum { EPOCHS_N = 5000, ROWS = 8 };
    static double sums[EPOCHS_N], penalties[EPOCHS_N];
    setup s;
    REAL p[64];
    make(&s, n0, n1, ROWS);
    draw_timing_rows(&s, n0, ROWS);
    s.net.params = p;
    for (int tiny = 1; tiny >= 0; tiny--) {
        double best = 1e9;
        for (int rep = 0; rep < 10; rep++) {
            int status;
            seed = 7;
            for (ptrdiff_t k = 0; k < s.net.n_params; k++) p[k] = (REAL)(rnd() - 0.5);
            fbp_sample_tiny_on = tiny;
            double t0 = now();
            EPOCHS(&s.net, &s.data, 0.5, EPOCHS_N, ROWS, sums, penalties, &status);
            double dt = now() - t0;
            if (dt < best) best = dt;
        }
        printf("%d-%d-1 %s %s: %.1f ns a row\n", n0, n1, real_name(),
               tiny ? "unrolled" : "general ", best / EPOCHS_N / ROWS * 1e9);
    }
}

int main(int argc, char **argv) {
    if (argc > 3 && strcmp(argv[1], "time") == 0) {
        time_shape(atoi(argv[2]), atoi(argv[3]));
        return 0;
    }
    return check();
}
