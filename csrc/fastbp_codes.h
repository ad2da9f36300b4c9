/* The activation and loss codes, declared once (optimisers have no code:
 * each registers itself by name, csrc/optimizers.pxi).
 *
 * The activations and the losses are generated from their tables
 * (fastbp_activation_table.h, fastbp_loss_table.h): a row's place is its
 * code, from 0 without gaps, and FBP_N_ACTIVATIONS / FBP_N_LOSSES count
 * them (the Trainer checks codes against the counts). Python reads the
 * names in code order through _kernels.activation_table() and loss_table().
 */
#ifndef FASTBP_CODES_H
#define FASTBP_CODES_H

#include "fastbp_activation_table.h"
#include "fastbp_loss_table.h"

#define FBP_ACTIVATION_CODE(CODE, name, shape, f_prime) FBP_##CODE,
enum fbp_activation { FBP_ACTIVATION_TABLE(FBP_ACTIVATION_CODE) FBP_N_ACTIVATIONS };
#undef FBP_ACTIVATION_CODE

#define FBP_LOSS_CODE(CODE, name, output, param) FBP_##CODE,
enum fbp_loss { FBP_LOSS_TABLE(FBP_LOSS_CODE) FBP_N_LOSSES };
#undef FBP_LOSS_CODE

/* each activation's name, whether it acts on each unit alone (it may be hidden),
 * and whether its f' is written through a (a layer with it keeps its a) */
#define FBP_ELEMENTWISE 1
#define FBP_ROWWISE 0
#define FBP_F_PRIME_OF_Z 0
#define FBP_F_PRIME_OF_A 1
#define FBP_ACTIVATION_NAME(CODE, name, shape, f_prime) #name,
#define FBP_ACTIVATION_SHAPE(CODE, name, shape, f_prime) FBP_##shape,
#define FBP_ACTIVATION_F_PRIME(CODE, name, shape, f_prime) FBP_F_PRIME_OF_##f_prime,
static const char *const fbp_activation_names[] = {
    FBP_ACTIVATION_TABLE(FBP_ACTIVATION_NAME)};
static const int fbp_activation_elementwise[] = {
    FBP_ACTIVATION_TABLE(FBP_ACTIVATION_SHAPE)};
static const int fbp_activation_needs_a[] = {
    FBP_ACTIVATION_TABLE(FBP_ACTIVATION_F_PRIME)};
#undef FBP_ACTIVATION_NAME
#undef FBP_ACTIVATION_SHAPE
#undef FBP_ACTIVATION_F_PRIME

/* each loss's name, the output activation its delta is written for and its
 * parameter's default */
#define FBP_LOSS_NAME(CODE, name, output, param) #name,
#define FBP_LOSS_OUTPUT(CODE, name, output, param) output,
#define FBP_LOSS_PARAM(CODE, name, output, param) param,
static const char *const fbp_loss_names[] = {FBP_LOSS_TABLE(FBP_LOSS_NAME)};
static const int fbp_loss_outputs[] = {FBP_LOSS_TABLE(FBP_LOSS_OUTPUT)};
static const double fbp_loss_params[] = {FBP_LOSS_TABLE(FBP_LOSS_PARAM)};
#undef FBP_LOSS_NAME
#undef FBP_LOSS_OUTPUT
#undef FBP_LOSS_PARAM

#endif
