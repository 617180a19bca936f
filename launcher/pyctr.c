/*
 * pyctr's installed command: Python started -I -S (see exec_python.h), with no garbage
 * collection: a pyctr command is short and makes few cycles, and its imports (click, httpx)
 * alone trigger several collections. `pyctr run`, which may wait for long, turns it back on.
 * bin/pyctr is the same in Python, installed where no C compiler is.
 */
#include "exec_python.h"

int main(int argc, char **argv) {
    static const char code[] =
        "import sys;sys.path[:0]=[sys.argv.pop(1)];sys.argv[0]=sys.argv.pop(1);"
        "import gc;gc.disable();from pyctr.cli import main;main()";
    return exec_python(argc, argv, "pyctr", "pyctr/cli.py", code, "pyctr.cli");
}
