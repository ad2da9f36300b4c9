/* Checks csrc/fastbp_sample_impl.h's per-sample momentum epochs of a net of a
 * few units (fbp_sample_momentum_tiny) against the momentum path they replace
 * (fbp_sample_tiny_on = 0) bit for bit, and times both, in C, without a pip
 * build; built without target_clones (-U__linux__) at a chosen -march, it
 * checks the baseline's code too.
 *
 *   gcc -O3 -fno-math-errno -pthread -U__linux__ -march=x86-64-v3 -Icsrc \
 *       tools/sample_tiny_momentum_harness.c -lm -o /tmp/mtiny_d
 *   ... -DREAL=float -DSFX=_f -o /tmp/mtiny_f      (float32)
 *   /tmp/mtiny_d check        # 400 random cases over the 16 shapes: 0 differing
 *   /tmp/mtiny_d time 2 2     # ns a row of 2-2-1 at mu 0.4: tiny epochs in one call, one
 *                             # a call, then general
 *
 * The check draws shapes n0-n1-1 (n0, n1 in 1..4), weights and velocities
 * (some large), rows, targets (some whose loss overflows), rates, momenta,
 * with and without an order, and compares several epoch calls in a row
 * (weights, velocities, totals and status), then a many-epoch call
 * (fbp_sample_momentum_epochs) with the general epochs one by one.
 */
#include "sample_tiny_common.h"

#define EPOCH GLUE(fbp_sample_momentum_epoch, SFX)
#define EPOCHS GLUE(fbp_sample_momentum_epochs, SFX)
#define NONFINITE GLUE(fbp_first_nonfinite, SFX)

static int check(void) {
    int bad = 0, statuses[2] = {0, 0}, epoch_status[3] = {0, 0, 0};
    for (int trial = 0; trial < 400; trial++) {
        setup s;
        int n0 = 1 + trial % 4, n1 = 1 + (trial / 4) % 4;
        int rows = 1 + (int)(rnd() * 8), epochs = 1 + (int)(rnd() * 30);
        make(&s, n0, n1, rows);
        ptrdiff_t n = s.net.n_params;
        REAL p1[64], p2[64], v1[64], v2[64];
        double scale = trial % 3 == 0 ? 40 : 1;
        double lr = trial % 7 == 0 ? (sizeof(REAL) == 4 ? 1e39 : 1e300) : rnd();
        double mu = trial % 5 == 0 ? 0.4000000059604645 : rnd();
        for (ptrdiff_t k = 0; k < n; k++) p1[k] = p2[k] = (REAL)((rnd() - 0.5) * 2 * scale);
        for (ptrdiff_t k = 0; k < n; k++) v1[k] = v2[k] = (REAL)(trial % 4 ? (rnd() - 0.5) : 0);
        draw_rows(&s, trial, n0, rows, epochs);
        for (int e = 0; e < epochs; e++) {
            fbp_totals t1, t2;
            const ptrdiff_t start = s.data.order ? e * rows : 0;
            fbp_sample_tiny_on = 1; s.net.params = p1;
            int a = EPOCH(&s.net, &s.data, lr, mu, 0, v1, start, start + rows, &t1);
            fbp_sample_tiny_on = 0; s.net.params = p2;
            int b = EPOCH(&s.net, &s.data, lr, mu, 0, v2, start, start + rows, &t2);
            if (a != b || memcmp(p1, p2, n * sizeof(REAL)) || memcmp(v1, v2, n * sizeof(REAL))
                || memcmp(&t1.loss_sum, &t2.loss_sum, 8) || t1.rows_done != t2.rows_done
                || memcmp(&t1.penalty_sum, &t2.penalty_sum, 8)) {
                if (bad++ < 5) printf("an epoch differs: trial %d, %d-%d-1\n", trial, n0, n1);
                break;
            }
            if (a) { statuses[1]++; break; }
            if (e == epochs - 1) statuses[0]++;
        }
        /* many epochs in one call against the general epochs one by one */
        for (ptrdiff_t k = 0; k < n; k++) p1[k] = p2[k] = (REAL)((rnd() - 0.5) * 2 * scale);
        for (ptrdiff_t k = 0; k < n; k++) v1[k] = v2[k] = 0;
        double d1[64] = {0}, d2[64] = {0}, q1[64] = {0}, q2[64] = {0};
        int st1, st2 = 0;
        ptrdiff_t e1, e2;
        fbp_sample_tiny_on = 1; s.net.params = p1;
        e1 = EPOCHS(&s.net, &s.data, lr, mu, 0, v1, epochs, rows, d1, q1, &st1);
        fbp_sample_tiny_on = 0; s.net.params = p2;
        for (e2 = 0; e2 < epochs; e2++) {
            fbp_totals t2;
            const ptrdiff_t start = s.data.order ? e2 * rows : 0;
            st2 = EPOCH(&s.net, &s.data, lr, mu, 0, v2, start, start + rows, &t2);
            if (st2) break;
            if (NONFINITE(p2, n) >= 0) { st2 = 2; break; }
            d2[e2] = t2.loss_sum; q2[e2] = t2.penalty_sum;
        }
        if (e1 != e2 || st1 != st2 || memcmp(p1, p2, n * sizeof(REAL))
            || memcmp(v1, v2, n * sizeof(REAL)) || memcmp(d1, d2, sizeof d1)
            || memcmp(q1, q2, sizeof q1)) {
            if (bad++ < 5) printf("epochs differ: trial %d, %d-%d-1 (%td/%d, %td/%d)\n", trial, n0,
                                  n1, e1, st1, e2, st2);
        }
        epoch_status[st1]++;
    }
    printf("%s: 400 cases, %d differing; one epoch a call ran through/stopped: %d/%d; "
           "epochs calls' status 0/1/2: %d/%d/%d; tiny calls %td\n",
           real_name(), bad, statuses[0], statuses[1],
           epoch_status[0], epoch_status[1], epoch_status[2], fbp_sample_tiny_runs);
    return bad != 0;
}

static void time_shape(int n0, int n1) {
    enum { EPOCHS_N = 5000, ROWS = 4 };
    setup s;
    REAL p[64], v[64];
    make(&s, n0, n1, ROWS);
    draw_timing_rows(&s, n0, ROWS);
    s.net.params = p;
    for (int tiny = 2; tiny >= 0; tiny--) {
        double best = 1e9;
        for (int rep = 0; rep < 10; rep++) {
            fbp_totals t;
            seed = 7;
            for (ptrdiff_t k = 0; k < s.net.n_params; k++) { p[k] = (REAL)(rnd() - 0.5); v[k] = 0; }
            fbp_sample_tiny_on = tiny != 0;
            double t0 = now();
            if (tiny == 2) {
                static double sums[EPOCHS_N], penalties[EPOCHS_N];
                int status;
                EPOCHS(&s.net, &s.data, 0.5, 0.4000000059604645, 0, v, EPOCHS_N, ROWS, sums,
                       penalties, &status);
            } else {
                for (int e = 0; e < EPOCHS_N; e++)
                    EPOCH(&s.net, &s.data, 0.5, 0.4000000059604645, 0, v, 0, ROWS, &t);
            }
            double dt = now() - t0;
            if (dt < best) best = dt;
        }
        printf("%d-%d-1 %s %s: %.1f ns a row\n", n0, n1, real_name(),
               tiny == 2 ? "tiny epochs" : tiny ? "tiny epoch " : "general    ", best / EPOCHS_N / ROWS * 1e9);
    }
}

int main(int argc, char **argv) {
    if (argc > 3 && strcmp(argv[1], "time") == 0) {
        time_shape(atoi(argv[2]), atoi(argv[3]));
        return 0;
    }
    return check();
}
