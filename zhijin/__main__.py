from zhijin.cli import main

main()
