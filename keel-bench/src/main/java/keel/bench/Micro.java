package keel.bench;

public final class Micro { private Micro() {} static int main(String[] args) { return 0; } }
