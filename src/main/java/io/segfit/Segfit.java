// SPDX-License-Identifier: Apache-2.0
package io.segfit;

import io.segfit.internal.NativeHeap;
import io.segfit.internal.NativeLibrary;
import java.util.Properties;

/**
 * Whether segfit can run here, and what was loaded. Use {@link #isAvailable()} to fall back to
 * another allocator on platforms without a native library (segfit ships Linux x86_64 and
 * aarch64), instead of catching {@link UnsatisfiedLinkError} from {@link Heap}.
 *
 * <p>The native library is loaded once per JVM (per class loader), on first use of this class
 * or of {@link Heap}: from the system property {@code segfit.library.path} if set (no
 * fallback), else from {@code natives/linux_64/libsegfit.so} or
 * {@code natives/linux_arm64/libsegfit.so} on the class path, extracted to
 * {@code segfit.tmpdir} (default {@code java.io.tmpdir}) and deleted once loaded. On JDK 22+
 * run with {@code --enable-native-access=ALL-UNNAMED} (class path) or
 * {@code --enable-native-access=io.segfit} (module path) to silence the JDK's native-access
 * warning. All methods are thread-safe.
 */
public final class Segfit {
  private Segfit() {}

  /**
   * Whether the native library is loaded and usable.
   *
   * @return true if heaps can be made
   */
  public static boolean isAvailable() {
    return NativeLibrary.failure() == null;
  }

  /**
   * Why the native library could not be loaded: the message names os.name, os.arch and the
   * resource or path tried, and the cause is the JVM's own error (for example a wrong ELF class
   * or a missing file).
   *
   * @return the error, or null if the library is available
   */
  public static Throwable unavailabilityCause() {
    return NativeLibrary.failure();
  }

  /**
   * The version of the native library, as "major.minor.patch" from {@code segfit.h}.
   *
   * @return the version
   * @throws UnsatisfiedLinkError if the library is not available
   */
  public static String nativeVersion() {
    NativeLibrary.ensureLoaded();
    int v = NativeHeap.version();
    return (v >>> 16) + "." + ((v >>> 8) & 0xff) + "." + (v & 0xff);
  }

  /**
   * Where the native library was loaded from: a path given by {@code segfit.library.path}, or
   * the class path resource.
   *
   * @return the source
   * @throws UnsatisfiedLinkError if the library is not available
   */
  public static String nativeSource() {
    NativeLibrary.ensureLoaded();
    return NativeLibrary.source();
  }

  /**
   * The commit the bundled native library was built from (the build.properties file next to
   * it), or "unknown" when loaded from {@code segfit.library.path} or not recorded.
   *
   * @return the commit id, possibly with a "-dirty" suffix
   */
  public static String nativeCommit() {
    Properties p = NativeLibrary.buildProperties();
    return p.getProperty("commit", "unknown");
  }

  /**
   * The operating system's page size the allocator runs with (4, 16 or 64 KiB).
   *
   * @return the page size in bytes
   * @throws UnsatisfiedLinkError if the library is not available
   */
  public static long pageSize() {
    NativeLibrary.ensureLoaded();
    return NativeHeap.pageSize();
  }

  /**
   * The largest block size served from slabs; larger blocks get a mapping of their own.
   *
   * @return the size in bytes
   * @throws UnsatisfiedLinkError if the library is not available
   */
  public static long smallMax() {
    NativeLibrary.ensureLoaded();
    return NativeHeap.smallMax();
  }
}
