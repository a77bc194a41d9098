from mer_tag.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
