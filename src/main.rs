fn main() {
    println!("portwall: under construction");
}
