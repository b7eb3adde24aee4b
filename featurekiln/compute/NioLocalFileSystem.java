// Hadoop's local file system, with the permission of every new file set through java.nio.
//
// Without Hadoop's native library (pip's pyspark ships none), RawLocalFileSystem sets the
// permission of each file it creates by running `chmod` in a new process: a Delta write of
// 455 day files (and their .crc files) starts 910 processes, about 5 ms each on two cores,
// which was most of the "per-file cost" of local writes (bench/README.md). This subclass sets
// the same bits with one system call. Permissions with bits above 0777 (sticky, setuid) go to
// Hadoop's own code. featurekiln/compute/jars.py compiles it; session.py uses it for local
// masters as `fs.file.impl`.
package featurekiln;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.attribute.PosixFilePermission;
import java.util.EnumSet;
import java.util.Set;
import org.apache.hadoop.fs.LocalFileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.fs.permission.FsPermission;

public class NioLocalFileSystem extends LocalFileSystem {
  public NioLocalFileSystem() {
    super(new Raw());
  }

  /** The raw (checksum-less) file system below: only setPermission differs from Hadoop's. */
  public static class Raw extends RawLocalFileSystem {
    // Bit i of a mode, from the lowest (others' execute) to the highest (owner's read).
    private static final PosixFilePermission[] BITS = {
      PosixFilePermission.OTHERS_EXECUTE, PosixFilePermission.OTHERS_WRITE, PosixFilePermission.OTHERS_READ,
      PosixFilePermission.GROUP_EXECUTE, PosixFilePermission.GROUP_WRITE, PosixFilePermission.GROUP_READ,
      PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.OWNER_WRITE, PosixFilePermission.OWNER_READ,
    };

    @Override
    public void setPermission(Path p, FsPermission permission) throws IOException {
      int mode = permission.toShort();
      if ((mode & ~0777) != 0) {
        super.setPermission(p, permission);
        return;
      }
      Set<PosixFilePermission> bits = EnumSet.noneOf(PosixFilePermission.class);
      for (int i = 0; i < BITS.length; i++) {
        if ((mode & (1 << i)) != 0) {
          bits.add(BITS[i]);
        }
      }
      Files.setPosixFilePermissions(pathToFile(p).toPath(), bits);
    }
  }
}
