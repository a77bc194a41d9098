from mer_tag.cli import run

if __name__ == "__main__":
    run()
