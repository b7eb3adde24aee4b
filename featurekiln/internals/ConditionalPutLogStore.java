// Delta's log store for an object store with conditional writes (S3, and S3-compatible stores that honour
// If-None-Match): a commit file is created by one PUT that the store refuses when the key exists. That
// put-if-absent is the atomic "create only if absent" Delta's optimistic concurrency needs, across any
// number of drivers on any number of machines: the writer that loses a race gets
// java.nio.file.FileAlreadyExistsException, and Delta checks for conflicts and retries at the next version,
// as it does on HDFS. Delta's own S3SingleDriverLogStore checks for the file and then writes it, which only
// a lock inside one JVM makes safe, so concurrent drivers overwrite each other's commits.
//
// The write goes through Hadoop's createFile() builder with the standard option
// fs.option.create.conditional.overwrite (S3A sends If-None-Match: * with the PUT, or with the completion
// of a multipart upload, when the stream closes). A stream that does not declare that capability is
// aborted before anything is uploaded and the write fails: a file system that would ignore the option
// must not look safe. A refusal (HTTP 412) whose object holds exactly the bytes this write sent is this
// write's own earlier attempt (a retried request whose first try landed), and counts as written.
// Overwrites (overwrite=true: _last_checkpoint and the like) are plain writes.
//
// featurekiln/internals/jars.py compiles it; featurekiln/compute/session.py configures it for the s3a and
// s3 schemes (spark.delta.logStore.<scheme>.impl).
package featurekiln;

import io.delta.storage.HadoopFileSystemLogStore;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.util.Arrays;
import java.util.Iterator;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

public class ConditionalPutLogStore extends HadoopFileSystemLogStore {
  static final String CONDITIONAL_OVERWRITE = "fs.option.create.conditional.overwrite";
  // The class S3A raises for a refused precondition (HTTP 412), matched by name: hadoop-aws is not on
  // featurekiln's compile class path.
  static final String PRECONDITION_FAILED = "org.apache.hadoop.fs.s3a.RemoteFileChangedException";

  public ConditionalPutLogStore(Configuration initHadoopConf) {
    super(initHadoopConf);
  }

  @Override
  public void write(Path path, Iterator<String> actions, Boolean overwrite, Configuration hadoopConf)
      throws IOException {
    byte[] content = encode(actions);
    FileSystem fs = path.getFileSystem(hadoopConf);
    if (overwrite) {
      try (FSDataOutputStream out = fs.create(path, true)) {
        out.write(content);
      }
      return;
    }
    FSDataOutputStream out =
        (FSDataOutputStream) fs.createFile(path).overwrite(true).must(CONDITIONAL_OVERWRITE, true).build();
    if (!out.hasCapability(CONDITIONAL_OVERWRITE)) {
      out.abort();
      throw new IOException(
          path + ": the file system of this path cannot create a file only if it is absent ("
              + fs.getClass().getName() + " declares no " + CONDITIONAL_OVERWRITE + "), so a Delta commit "
              + "could overwrite another writer's; refusing to write it");
    }
    try {
      out.write(content);
      out.close();
    } catch (IOException error) {
      if (!refusedAsExisting(error)) {
        throw error;
      }
      if (holds(fs, path, content)) {
        return;
      }
      FileAlreadyExistsException exists = new FileAlreadyExistsException(path.toString());
      exists.initCause(error);
      throw exists;
    }
  }

  @Override
  public Boolean isPartialWriteVisible(Path path, Configuration hadoopConf) {
    // An object appears whole when its upload completes.
    return false;
  }

  static byte[] encode(Iterator<String> actions) {
    StringBuilder text = new StringBuilder();
    while (actions.hasNext()) {
      text.append(actions.next()).append('\n');
    }
    return text.toString().getBytes(StandardCharsets.UTF_8);
  }

  static boolean refusedAsExisting(Throwable error) {
    for (Throwable cause = error; cause != null; cause = cause.getCause()) {
      if (cause.getClass().getName().equals(PRECONDITION_FAILED)
          || cause instanceof org.apache.hadoop.fs.FileAlreadyExistsException
          || cause instanceof FileAlreadyExistsException) {
        return true;
      }
    }
    return false;
  }

  // Whether the object at path holds exactly content (a bounded read: a commit file is small).
  static boolean holds(FileSystem fs, Path path, byte[] content) throws IOException {
    try (InputStream in = fs.open(path)) {
      ByteArrayOutputStream found = new ByteArrayOutputStream(content.length);
      byte[] buffer = new byte[8192];
      int read;
      while ((read = in.read(buffer)) >= 0) {
        found.write(buffer, 0, read);
        if (found.size() > content.length) {
          return false;
        }
      }
      return Arrays.equals(found.toByteArray(), content);
    } catch (java.io.FileNotFoundException gone) {
      return false;
    }
  }
}
