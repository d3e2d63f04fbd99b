package io.olmoppl.batching;

import java.util.List;
import java.util.Locale;

/**
 * Recognises an allocation failure, Java heap or native, among an exception and its causes: the
 * engine gives a window that fails alone for lack of memory the status {@code out_of_memory}
 * instead of failing its request.
 */
final class OutOfMemory {
  private OutOfMemory() {}

  /**
   * Messages of allocation failures, lower case: CUDA's ("CUDA out of memory. Tried to allocate
   * ..."), libtorch's CPU allocator on Linux ("DefaultCPUAllocator: can't allocate memory: you
   * tried to allocate N bytes. Error code 12 (Cannot allocate memory)", seen in {@code
   * OutOfMemoryTest}) and where {@code posix_memalign} is not used ("DefaultCPUAllocator: not
   * enough memory: ..."), C++ {@code new}'s "std::bad_alloc", and other allocators' "failed to
   * allocate".
   */
  private static final List<String> MESSAGES =
      List.of(
          "out of memory",
          "can't allocate memory",
          "cannot allocate memory",
          "not enough memory",
          "bad_alloc",
          "failed to allocate");

  /**
   * @return whether {@code e} or a cause is an allocation failure (Java heap or native)
   */
  static boolean causedBy(Throwable e) {
    for (Throwable c = e; c != null; c = c.getCause()) {
      String m = String.valueOf(c.getMessage()).toLowerCase(Locale.ROOT);
      if (c instanceof OutOfMemoryError || MESSAGES.stream().anyMatch(m::contains)) {
        return true;
      }
    }
    return false;
  }
}
