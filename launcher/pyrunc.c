/*
 * pyrunc's installed command: Python started -I -S (see exec_python.h), with no garbage
 * collection while the CLI starts (its imports alone trigger a few collections, ~0.7 ms of a
 * run; what may run for long, a foreground container's wait or `events`, turns it back on).
 * bin/pyrunc is the same in Python, installed where no C compiler is.
 */
#include "exec_python.h"

int main(int argc, char **argv) {
    static const char code[] =
        "import sys;sys.path[:0]=[sys.argv.pop(1)];sys.argv[0]=sys.argv.pop(1);"
        "import gc;gc.disable();from pyrunc.cli import entry;entry()";
    return exec_python(argc, argv, "pyrunc", "pyrunc/cli.py", code, "pyrunc");
}
