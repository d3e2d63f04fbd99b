/*
 * The one function of libolmoppl_mkl_intel_cpu.so (built by scripts/build-native, loaded by
 * io.olmoppl.runtime.MklDispatch before libtorch).
 *
 * MKL, linked into libtorch, asks mkl_serv_intel_cpu_true() whether it runs on an Intel CPU and
 * picks its AVX2 sgemm kernels on every other CPU, whatever instructions that CPU has. On an AMD
 * CPU with AVX-512 (Zen 4 and later; measured on Zen 5) its AVX-512 kernels run correctly and much faster, and on
 * one with AVX2 and FMA only its Intel AVX2 kernels. Loaded with
 * RTLD_GLOBAL before libtorch, this definition is the one libtorch's call binds to; MKL then
 * chooses kernels from the CPU's feature flags alone.
 */
int mkl_serv_intel_cpu_true(void) { return 1; }
